-- The tenant of this session: the setting booking_guard.company_id, which the application or BI
-- connection sets (SET booking_guard.company_id = '42', or in its connection options). Unset or
-- empty: NULL, and the row-level security policies then show no tenant's rows.
-- No SET search_path on purpose: every name is qualified, and a function with a SET clause is
-- never inlined, while this one is evaluated by the row-level security policies for every row
-- they filter. It runs with the caller's rights (SECURITY INVOKER).
CREATE FUNCTION guard.current_company()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT nullif(pg_catalog.current_setting('booking_guard.company_id', TRUE), '')::bigint;
$$;
