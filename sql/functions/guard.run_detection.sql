-- Every enabled check over one scope (since: the windowed pass; only_call: one call), one row per
-- check with its counts: guard.run_checks without each check's status and error. A check that
-- did not run through (failed, cut, skipped) has offending NULL. Kept with the columns it has
-- always returned, for the callers that read them.
CREATE OR REPLACE FUNCTION guard.run_detection(since timestamptz, only_call bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.check_id, d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_checks(since, only_call) AS d;
$$;
