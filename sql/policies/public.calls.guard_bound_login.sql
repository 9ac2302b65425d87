-- A login bound to companies (guard tenant grant; guard.bound_companies) reads and writes only
-- their rows of public.calls through any statement of the application role's, as Booking Guard's
-- own functions already refuse other companies' rows (guard.assert_tenant). A login bound to
-- none (the multi-tenant application) is unchanged, and so is every role outside the
-- application role (the owner role and its jobs, reporting and reviewer, which
-- guard_tenant_only narrows, a DBA's own roles). Restrictive: it narrows guard_all_rows. The
-- sub-SELECTs are evaluated once per statement, not per row; the table's owner is not affected.
DROP POLICY IF EXISTS guard_bound_login ON public.calls;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_bound_login ON public.calls AS RESTRICTIVE FOR ALL TO %I'
        ' USING ((SELECT guard.bound_companies()) IS NULL'
        ' OR company_id = ANY ((SELECT guard.bound_companies())::bigint[]))'
        ' WITH CHECK ((SELECT guard.bound_companies()) IS NULL'
        ' OR company_id = ANY ((SELECT guard.bound_companies())::bigint[]))',
        guard.role('application')
    );
END;
$$;
