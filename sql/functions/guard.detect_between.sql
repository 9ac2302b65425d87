-- One batch of a detection pass over the whole history, [since, until): guard.run_checks_between
-- without each check's status and error (a check that did not run through has offending NULL).
-- Kept with the columns it has always returned, for the callers that read them.
CREATE OR REPLACE FUNCTION guard.detect_between(since timestamptz, until timestamptz)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer
)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.check_id, d.rule_id, d.offending, d.opened, d.repeated
    FROM guard.run_checks_between(since, until) AS d;
$$;
