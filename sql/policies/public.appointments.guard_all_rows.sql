-- Row-level security on the application's table public.appointments (see
-- guard.create_all_rows_policy), so that reporting and reviewer reads can be limited to their
-- tenant (guard_tenant_only) and a bound login to its companies (guard_bound_login); everyone else
-- keeps every row.
SELECT guard.create_all_rows_policy('public.appointments');
