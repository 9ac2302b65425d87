-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.alerts. The role name is configurable (guard.role_names).
DROP POLICY IF EXISTS owner_maintenance ON guard.alerts;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.alerts FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;
