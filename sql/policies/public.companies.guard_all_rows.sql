-- Row-level security on the application's table public.companies (see
-- guard.create_all_rows_policy), so that reporting and reviewer reads can be limited to their
-- companies (guard_tenant_only); everyone else keeps every row.
SELECT guard.create_all_rows_policy('public.companies');
