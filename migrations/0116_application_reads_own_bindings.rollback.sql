-- Rollback of 0116_application_reads_own_bindings: the application no longer reads its bindings
-- (the policies that read them are the definitions of this release, gone with it).

DO $$
BEGIN
    EXECUTE format('REVOKE SELECT ON TABLE guard.tenant_bindings FROM %I', guard.role('application'));
END
$$;
