-- Row-level security on the application's table public.customers (see
-- guard.create_all_rows_policy), so that a login bound to companies is confined to their rows
-- (guard_bound_login); everyone else keeps every row.
SELECT guard.create_all_rows_policy('public.customers');
