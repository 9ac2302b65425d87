-- Rollback of 0116_bound_application_role: the bound application role reads no bindings any
-- more (the policies that confined its members are this release's definitions, gone with it);
-- its members keep the application role's rights through it. The role itself stays (another
-- database of the cluster may use it; a DBA drops a role with DROP OWNED and DROP ROLE).

DO $$
DECLARE
    bound text := left((SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'application'), 56)
    || '_bound';
BEGIN
    IF to_regrole(quote_ident(bound)) IS NOT NULL THEN
        EXECUTE format('REVOKE SELECT ON TABLE guard.tenant_bindings FROM %I', bound);
    END IF;
END;
$$;
