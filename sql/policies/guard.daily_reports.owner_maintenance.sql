-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.daily_reports. The role name is configurable (guard.role_names).
DROP POLICY IF EXISTS owner_maintenance ON guard.daily_reports;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.daily_reports FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;
