-- One detection pass over the recent window (detection_window_minutes): what the detect job
-- runs every 5 minutes and `guard check` runs on demand. Returns a summary per check.
CREATE OR REPLACE FUNCTION guard.detect()
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.check_id, d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(
        now() - make_interval(mins => (guard.setting('detection_window_minutes') #>> '{}')::integer),
        NULL
    ) AS d;
$$;
