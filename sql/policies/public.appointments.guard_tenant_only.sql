-- Reporting and reviewer connections read only their tenant's rows of public.appointments (the
-- security_invoker check views and guard.calls_report read it with their rights). Restrictive:
-- it narrows guard_all_rows for these two roles only. Role names from guard.role_names.
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.appointments AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (company_id = guard.current_company())',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;
