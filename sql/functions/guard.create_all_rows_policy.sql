-- Row-level security on one of the application's tables (the policy files
-- policies/public.TABLE.guard_all_rows.sql call it), enabled (not forced: its owner is not
-- affected) so that Booking Guard's restrictive policies can narrow what some roles see
-- (guard_tenant_only, guard_bound_login). The permissive policy guard_all_rows keeps every other
-- role, the application and its triggers included, exactly as before. A policy file runs when
-- its own text changes: a change here must come with a change to theirs to reach a database
-- that is already applied.
CREATE OR REPLACE FUNCTION guard.create_all_rows_policy(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS guard_all_rows ON %s', target);
    EXECUTE format(
        'CREATE POLICY guard_all_rows ON %s FOR ALL TO public USING (TRUE) WITH CHECK (TRUE)', target
    );
END;
$$;
