-- Row-level security on the application's table public.customers, enabled (not forced: its owner is
-- not affected) so that a login bound to companies is confined to their rows
-- (guard_bound_login). This permissive policy keeps every other role, the application and its
-- triggers included, exactly as before.
ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS guard_all_rows ON public.customers;

CREATE POLICY guard_all_rows ON public.customers
FOR ALL
TO public
USING (TRUE)
WITH CHECK (TRUE);
