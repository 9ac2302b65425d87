-- Row-level security on the application's table public.companies, enabled (not forced: its owner
-- is not affected) so that reporting and reviewer reads can be limited to their companies
-- (guard_tenant_only). This permissive policy keeps every other role, the application included,
-- exactly as before.
ALTER TABLE public.companies ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS guard_all_rows ON public.companies;

CREATE POLICY guard_all_rows ON public.companies
FOR ALL
TO public
USING (TRUE)
WITH CHECK (TRUE);
