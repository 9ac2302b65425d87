-- Row-level security on the application's table public.calls, enabled (not forced: its owner is
-- not affected) so that reporting and reviewer reads can be limited to their tenant
-- (guard_tenant_only). This permissive policy keeps every other role, the application and its
-- triggers included, exactly as before.
ALTER TABLE public.calls ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS guard_all_rows ON public.calls;

CREATE POLICY guard_all_rows ON public.calls
FOR ALL
TO public
USING (TRUE)
WITH CHECK (TRUE);
