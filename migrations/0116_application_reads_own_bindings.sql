-- 0116_application_reads_own_bindings: the application role may read its own tenant bindings
-- (the policy own_bindings shows a role only the bindings that apply to it): the restrictive
-- policy guard_bound_login on the application's tables reads them to confine a login bound to
-- companies. guard.role_grants lists it (sql/grants/role_grants.sql) and guard.apply_grants
-- gives it; granted here too so that the rollback, which takes it away, has a migration to
-- belong to.
-- Locks: none held long (privileges only).

DO $$
BEGIN
    EXECUTE format('GRANT SELECT ON TABLE guard.tenant_bindings TO %I', guard.role('application'));
END
$$;
