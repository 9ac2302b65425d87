-- A rate threshold (threshold_unit rate_pct) judges a windowed pass by the offending rows observed
-- in its window per 100 calls created in it. After a burst a pass reads only a slice of the
-- window, and counts the open alerts it did not read as repeats (quiet): those whose row was
-- observed from the window's start on count toward the rate, the row exactly at the start too,
-- whether the alert was probed (detection_probe_every_alerts or fewer open) or not.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (1, 'A');
-- Three calls without a direction (call_without_direction): the first exactly at the window's
-- start (two hours ago), then a minute apart.
SELECT pgtap_setup.legacy_calls(
    1, 3, date_trunc('second', now()) - interval '2 hours', interval '1 minute'
);
CREATE TEMPORARY TABLE edge AS
SELECT created_at AS since FROM calls
WHERE id = 1;

-- A burst to the pass (more than one call in the window), read one call a slice; any rate warns.
UPDATE guard.settings SET value = '1'
WHERE key IN ('detection_full_window_calls', 'detection_slice_calls');
UPDATE guard.checks SET threshold_unit = 'rate_pct', warn_above = 0, error_above = NULL
WHERE id = 'call_without_direction';

CREATE FUNCTION pg_temp.measure_after_pass() RETURNS numeric
LANGUAGE sql AS $$
    SELECT count(*) FROM guard.run_checks((SELECT since FROM edge), NULL);
    SELECT (details ->> 'measure')::numeric FROM guard.alerts
    WHERE fingerprint = 'check_threshold:check:call_without_direction' AND status = 'open';
$$;

SELECT is(pg_temp.measure_after_pass(), 33.33, 'pass 1 reads call 1 (its slice): 1 of 3 calls');
-- Pass 2 reads call 2; call 1's open alert is probed (found again, not written): a quiet repeat
-- of a row observed exactly at the window's start.
SELECT is(pg_temp.measure_after_pass(), 66.67, 'pass 2: call 2 read, call 1 a probed repeat at the window''s start: 2 of 3');
-- Pass 3 probes none (fewer open alerts allowed than there are): calls 1 and 2 are repeats
-- counted without a probe, call 3 is read.
UPDATE guard.settings SET value = '0'
WHERE key = 'detection_probe_every_alerts';
SELECT is(pg_temp.measure_after_pass(), 100.00, 'pass 3: call 3 read, calls 1 and 2 unprobed repeats: 3 of 3');
SELECT results_eq(
    $$SELECT count(*)::int, count(*) FILTER (WHERE status = 'open')::int FROM guard.alerts
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (3, 3)$$,
    'one open alert per call all along'
);

SELECT * FROM finish();
ROLLBACK;
