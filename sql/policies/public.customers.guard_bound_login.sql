-- A login bound to companies (guard tenant grant) reads and writes only their rows of
-- public.customers through any statement of the application role's, as Booking Guard's own functions
-- already refuse other companies' rows (guard.assert_tenant). A login bound to none (the
-- multi-tenant application) is unchanged, and so is every role outside the application role (the
-- owner role and its jobs; reporting and reviewer, which guard_tenant_only narrows; a DBA's own
-- roles). Restrictive: it narrows guard_all_rows.
-- The bindings are read in place, not through a function: the policy guard.tenant_bindings has
-- (own_bindings) shows a role only the bindings that apply to it, and each sub-SELECT is an
-- InitPlan, run once per statement and planned with it (a prepared statement plans it once), so
-- an unbound login pays one scan of the bindings per statement and nothing per row.
DROP POLICY IF EXISTS guard_bound_login ON public.customers;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_bound_login ON public.customers AS RESTRICTIVE FOR ALL TO %I'
        ' USING ((SELECT NOT EXISTS (SELECT FROM guard.tenant_bindings)) OR company_id = ANY'
        ' ((SELECT array_agg(b.company_id) FROM guard.tenant_bindings AS b)::bigint[]))'
        ' WITH CHECK ((SELECT NOT EXISTS (SELECT FROM guard.tenant_bindings)) OR company_id = ANY'
        ' ((SELECT array_agg(b.company_id) FROM guard.tenant_bindings AS b)::bigint[]))',
        guard.role('application')
    );
END;
$$;
