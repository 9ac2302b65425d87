-- An application login that serves some companies only (a member of the bound application role,
-- guard.bound_application_role(), bound to them with guard tenant grant) reads and writes only
-- their rows of public.customers through any statement, as Booking Guard's own functions already refuse
-- other companies' rows (guard.assert_tenant); bound to none, it sees none. Members of the
-- application role alone (the multi-tenant application) are not subject to it and pay nothing
-- for it, nor is any other role. Restrictive: it narrows guard_all_rows.
-- The bindings are read in place: the policy own_bindings shows a role only the bindings that
-- apply to it, and the sub-SELECT is an InitPlan, run once per statement, not per row.
DROP POLICY IF EXISTS guard_bound_login ON public.customers;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_bound_login ON public.customers AS RESTRICTIVE FOR ALL TO %I'
        ' USING (company_id = ANY ((SELECT array_agg(b.company_id) FROM guard.tenant_bindings AS b)::bigint[]))'
        ' WITH CHECK (company_id = ANY ((SELECT array_agg(b.company_id) FROM guard.tenant_bindings AS b)::bigint[]))',
        guard.bound_application_role()
    );
END;
$$;
