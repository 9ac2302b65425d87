-- How long an open alert may go unseen and still be the same alert when its row offends again
-- (guard.run_detection, guard.detect_between): alert_throttle_seconds past the pass that was due,
-- the detect job's interval. Passes come every interval_seconds (300) and the default throttle
-- is 300 s as well, so an alert found by every pass was last seen 300 s, give or take the
-- scheduler's jitter, before the next: measured against the throttle alone, about every other
-- pass closed every open alert as superseded and opened it again, a new row and a new delivery
-- each.
CREATE OR REPLACE FUNCTION guard.alert_silence()
RETURNS interval
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    SELECT
        make_interval(secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer)
        + make_interval(
            secs => coalesce(
                (SELECT j.interval_seconds FROM guard.jobs AS j WHERE j.name = 'detect'), 0
            )
        );
$$;
