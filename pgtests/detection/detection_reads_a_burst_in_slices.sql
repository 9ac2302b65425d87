-- After a burst (a window of more than detection_full_window_calls calls) a windowed pass reads
-- the rows since its check's previous pass (the head) and at most detection_slice_calls calls of
-- the older ones, from where the previous pass stopped (guard.detection_runs.read_to); the next
-- pass goes on from there, past the window's start if it has moved, until the burst is read
-- (docs/jobs.md, "What a pass reads and writes").
BEGIN;
SELECT plan(12);

INSERT INTO companies (id, name) VALUES (1, 'A');
-- A burst of 300 calls without a direction (call_without_direction), one every 8 s from 50
-- minutes ago (call 300: 10 minutes ago), and 20 in the head (2 minutes ago), written as a
-- legacy load would.
SELECT pgtap_setup.legacy_calls(1, 300, now() - interval '50 min' + interval '8 s', interval '8 s');
SELECT pgtap_setup.legacy_calls(301, 320, now() - interval '2 min');

UPDATE guard.settings SET value = '100'
WHERE key IN ('detection_full_window_calls', 'detection_slice_calls');

-- Pass 1: the head (a new row is found by the next pass, burst or not) and the first 100 calls.
SELECT results_eq(
    $$SELECT offending, opened FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (120, 120)$$,
    'the first pass reads the head and a slice of 100 calls'
);
SELECT results_eq(
    $$SELECT
          count(*) FILTER (WHERE entity_id = 100),
          count(*) FILTER (WHERE entity_id = 101),
          count(*) FILTER (WHERE entity_id > 300)
      FROM guard.alerts WHERE check_id = 'call_without_direction'$$,
    $$VALUES (1::bigint, 0::bigint, 20::bigint)$$,
    'the slice ends after its 100th call: call 100 in, call 101 not; the head in'
);
SELECT results_eq(
    $$SELECT read_to FROM guard.detection_runs WHERE check_id = 'call_without_direction'$$,
    $$SELECT created_at FROM calls WHERE id = 101$$,
    'read_to: where the next pass goes on (the 101st call)'
);

-- The window's start moves past where the first pass stopped (since: 30 minutes ago, after
-- call 101's 36.5 minutes): the next pass goes on from read_to all the same.
SELECT results_eq(
    $$SELECT opened FROM guard.run_detection(now() - interval '30 min', NULL)
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (100)$$,
    'the next pass reads the next 100 calls, older than its window''s start too'
);
SELECT results_eq(
    $$SELECT count(*) FROM guard.alerts
      WHERE check_id = 'call_without_direction' AND entity_id BETWEEN 101 AND 200$$,
    $$VALUES (100::bigint)$$,
    'calls 101 to 200'
);
SELECT results_eq(
    $$SELECT r.read_to FROM guard.detection_runs AS r WHERE r.check_id = 'call_without_direction'
      ORDER BY r.pass_started_at DESC LIMIT 1$$,
    $$SELECT created_at FROM calls WHERE id = 201$$,
    'and stops before call 201'
);

-- The slice reaches the head: the burst is read, read_to NULL.
SELECT results_eq(
    $$SELECT opened FROM guard.run_detection(now() - interval '30 min', NULL)
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (100)$$,
    'the third pass reads the rest of the burst'
);
SELECT results_eq(
    $$SELECT count(*) FROM guard.alerts WHERE check_id = 'call_without_direction' AND status = 'open'$$,
    $$VALUES (320::bigint)$$,
    'every offending call has its alert'
);
SELECT results_eq(
    $$SELECT r.read_to IS NULL FROM guard.detection_runs AS r
      WHERE r.check_id = 'call_without_direction' ORDER BY r.pass_started_at DESC LIMIT 1$$,
    $$VALUES (TRUE)$$,
    'read_to NULL: nothing older left to read'
);

-- Caught up: a pass reads the head only, and probes the open alerts (at most
-- detection_probe_every_alerts of them): all counted, none opened.
SELECT results_eq(
    $$SELECT offending, opened, repeated FROM guard.run_detection(now() - interval '30 min', NULL)
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (320, 0, 320)$$,
    'the next pass opens none and counts all'
);

-- The other side of detection_slice_calls: a slice as large as the burst's calls before the head
-- (300; with 100, 200 were left) reads them all in the first pass.
DELETE FROM guard.detection_runs;
UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'manual'
WHERE check_id = 'call_without_direction';
UPDATE guard.settings SET value = '300'
WHERE key = 'detection_slice_calls';
SELECT results_eq(
    $$SELECT opened FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (320)$$,
    'a slice of 300 calls: the first pass reads the whole burst'
);
SELECT results_eq(
    $$SELECT read_to IS NULL FROM guard.detection_runs WHERE check_id = 'call_without_direction'$$,
    $$VALUES (TRUE)$$,
    'and leaves no read_to'
);

SELECT * FROM finish();
ROLLBACK;
