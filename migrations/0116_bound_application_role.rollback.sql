-- Rollback of 0116_bound_application_role: the policies of this release on the application's
-- tables go (guard_bound_login on calls, appointments, customers and services; row-level
-- security on customers and services, which this release enabled, with its policies), and the
-- bound application role reads no bindings any more; its members keep the application role's
-- rights through it. The role itself stays (another database of the cluster may use it; a DBA
-- drops a role with DROP OWNED and DROP ROLE).
-- Locks: ACCESS EXCLUSIVE on calls, appointments, customers and services, for a moment each.

DROP POLICY IF EXISTS guard_bound_login ON public.calls;
DROP POLICY IF EXISTS guard_bound_login ON public.appointments;
DROP POLICY IF EXISTS guard_bound_login ON public.customers;
DROP POLICY IF EXISTS guard_bound_login ON public.services;
DROP POLICY IF EXISTS guard_tenant_only ON public.customers;
DROP POLICY IF EXISTS guard_all_rows ON public.customers;
DROP POLICY IF EXISTS guard_all_rows ON public.services;
ALTER TABLE public.customers DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.services DISABLE ROW LEVEL SECURITY;

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
