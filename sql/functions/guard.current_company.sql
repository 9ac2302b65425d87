-- The one company this session selected with the setting booking_guard.company_id (SET, or the
-- connection's options), or NULL. A selection, never an authorisation: every session may change
-- its own settings, so row-level security reads the companies bound to the role
-- (guard.visible_companies), and this setting can only narrow those to one of them. The
-- multi-tenant application may select a company to have its SECURITY DEFINER functions refuse
-- other companies' rows (guard.assert_tenant).
-- No SET search_path on purpose: every name is qualified, and a function with a SET clause is
-- never inlined. It runs with the caller's rights (SECURITY INVOKER).
CREATE OR REPLACE FUNCTION guard.current_company()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT nullif(pg_catalog.current_setting('booking_guard.company_id', TRUE), '')::bigint;
$$;
