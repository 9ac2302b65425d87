-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.correction_audit. The role name is configurable (guard.role_names).
DROP POLICY IF EXISTS owner_maintenance ON guard.correction_audit;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.correction_audit FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;
