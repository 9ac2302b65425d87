-- Row-level security by company on one of Booking Guard's tenant tables (the policy files
-- policies/guard.TABLE.tenant_isolation.sql call it): every role sees and writes only the rows of
-- the companies bound to it (guard.visible_companies: guard.tenant_bindings, narrowed by
-- booking_guard.company_id; unbound: nothing). The sub-SELECT is evaluated once per statement.
-- FORCE, so that the owner obeys the policies too; the owner's jobs pass by the table's
-- owner_maintenance policy. A policy file runs when its own text changes: a change here must
-- come with a change to theirs to reach a database that is already applied.
CREATE OR REPLACE FUNCTION guard.create_tenant_isolation(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s FOR ALL TO public'
        ' USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))'
        ' WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]))',
        target
    );
END;
$$;
