-- Reporting and reviewer connections read only the rows of public.customers of the companies
-- bound to their role (guard.visible_companies; unbound: nothing), and of those only the id and
-- the company (their grant is on those two columns): the security_invoker check
-- cross_tenant_link reads them with their rights. Restrictive: it narrows guard_all_rows for
-- these two roles only. Role names from guard.role_names.
DROP POLICY IF EXISTS guard_tenant_only ON public.customers;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.customers AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (company_id = ANY ((SELECT guard.visible_companies())::bigint[]))',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;
