-- Every rule for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
-- SECURITY DEFINER: the application calls it and may not write alerts itself (run_detection
-- stays SECURITY INVOKER and runs here with the owner's rights); a session with a tenant set may
-- only check that tenant's calls.
CREATE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = check_call.call_id;
    END IF;
    RETURN QUERY
    SELECT d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(NULL, check_call.call_id) AS d;
END;
$$;
