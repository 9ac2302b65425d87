-- Reporting and reviewer connections read only the companies bound to their role
-- (guard.visible_companies; unbound: none): another tenant's name is another tenant's row.
-- Restrictive: it narrows guard_all_rows for these two roles only. Role names from
-- guard.role_names.
DROP POLICY IF EXISTS guard_tenant_only ON public.companies;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.companies AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (id = ANY ((SELECT guard.visible_companies())::bigint[]))',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;
