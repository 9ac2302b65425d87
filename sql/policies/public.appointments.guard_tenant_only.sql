-- Reporting and reviewer connections read only the rows of public.appointments of the companies bound
-- to their role (guard.visible_companies; unbound: nothing). The security_invoker check views and
-- guard.calls_report read it with their rights. Restrictive: it narrows guard_all_rows for these
-- two roles only. The sub-SELECT is evaluated once per statement, so company_id = ANY (...) is
-- an index condition. Role names from guard.role_names.
DROP POLICY IF EXISTS guard_tenant_only ON public.appointments;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.appointments AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (company_id = ANY ((SELECT guard.visible_companies())::bigint[]))',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;
