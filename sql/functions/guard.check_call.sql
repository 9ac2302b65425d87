-- Every check for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
-- SECURITY DEFINER: the application calls it and may not write alerts itself (run_detection
-- stays SECURITY INVOKER and runs here with the owner's rights); a session with a tenant set may
-- only check that tenant's calls.
-- A NULL call is refused: run_detection reads it as "every call of every tenant, whole history",
-- which is the detect job's work (guard check), not something one application request may start.
-- An unknown call is refused too, so a typo is an error and not an empty, reassuring answer.
-- One check never stops the others: each runs isolated (guard.run_checks), and one that fails,
-- is cut by the caller's statement_timeout or is skipped returns offending NULL instead of
-- raising; a DBA's own checks run after Booking Guard's, within check_call_budget_ms.
CREATE OR REPLACE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    call_company bigint;
BEGIN
    IF check_call.call_id IS NULL THEN
        RAISE EXCEPTION 'check_call needs a call id'
            USING
                ERRCODE = 'null_value_not_allowed',
                HINT = 'every check over every call is the detect job (guard check, guard.detect())';
    END IF;
    SELECT c.company_id INTO call_company
    FROM public.calls AS c WHERE c.id = check_call.call_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', check_call.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(call_company);
    RETURN QUERY
    SELECT d.check_id, d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_checks(NULL, check_call.call_id) AS d;
END;
$$;
