-- Warn and error thresholds per check: a windowed pass (guard.run_detection, which judges in
-- guard.run_checks) judges a check that has them by its offending rows (or their rate per 100
-- calls of the window), records pass, warn or fail, and keeps one alert of check check_threshold
-- while it is not pass. Thresholds that contradict each other are refused.
BEGIN;
SELECT plan(17);

INSERT INTO companies (id, name) VALUES (1, 'A');
-- Calls 1 and 2 without a direction, 3 to 20 inbound, written as a legacy load would.
SELECT pgtap_setup.legacy_calls(1, 2, now() - interval '10 min');
SELECT pgtap_setup.legacy_calls(3, 20, now() - interval '10 min', direction => 'inbound');

UPDATE guard.checks SET warn_above = 1, error_above = 3
WHERE id = 'call_without_direction';

SELECT results_eq(
    $$SELECT offending, opened FROM guard.run_detection(now() - interval '1 hour', NULL)
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (2, 2)$$,
    'the per-row alerts are opened as before'
);
SELECT results_eq(
    $$SELECT outcome FROM guard.detection_runs WHERE check_id = 'call_without_direction'$$,
    $$VALUES ('warn'::text)$$,
    '2 rows, warn above 1: the pass warns'
);
SELECT results_eq(
    $$SELECT check_id, entity_type, severity, details ->> 'measure' FROM guard.alerts
      WHERE fingerprint = 'check_threshold:check:call_without_direction' AND status = 'open'$$,
    $$VALUES ('check_threshold'::text, 'check'::text, 'medium'::text, '2'::text)$$,
    'with one medium alert about the check'
);

SET LOCAL session_replication_role = replica;
UPDATE calls SET direction = NULL
WHERE id IN (3, 4);
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT count(*)::int FROM guard.run_detection(now() - interval '1 hour', NULL)$$,
    $$SELECT count(*)::int FROM guard.checks WHERE enabled AND check_view IS NOT NULL$$,
    'a second pass'
);
SELECT results_eq(
    $$SELECT severity, occurrences FROM guard.alerts
      WHERE fingerprint = 'check_threshold:check:call_without_direction' AND status = 'open'$$,
    $$VALUES ('high'::text, 2)$$,
    '4 rows, error above 3: the same alert, now high'
);

-- As a rate: 4 of the window's 20 calls are 20 per 100; error above 25 and warn above 20 pass.
UPDATE guard.checks SET threshold_unit = 'rate_pct', warn_above = 20, error_above = 25
WHERE id = 'call_without_direction';
SELECT is(
    (
        SELECT count(*)::int FROM guard.run_detection(now() - interval '1 hour', NULL)
        WHERE check_id = 'call_without_direction'
    ),
    1,
    'a pass by rate'
);
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts
      WHERE fingerprint = 'check_threshold:check:call_without_direction'$$,
    $$VALUES ('resolved'::text, 'fixed'::text)$$,
    'exactly at the warn threshold passes: the alert is resolved'
);
SELECT results_eq(
    $$SELECT outcome FROM guard.detection_runs WHERE check_id = 'call_without_direction'
      ORDER BY id$$,
    $$VALUES ('warn'::text), ('fail'), ('pass')$$,
    'each pass records its outcome'
);

-- A rate counts the rows observed in the window, not older ones whose alerts stay open: calls
-- 1 and 2 moved three hours back still offend, their alerts stay open, and are not in the rate.
SET LOCAL session_replication_role = replica;
UPDATE calls SET created_at = now() - interval '3 hours'
WHERE id IN (1, 2);
SET LOCAL session_replication_role = origin;
UPDATE guard.checks SET warn_above = 10, error_above = 12
WHERE id = 'call_without_direction';
SELECT results_eq(
    $$SELECT offending FROM guard.run_detection(now() - interval '1 hour', NULL)
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (4)$$,
    'four offending rows, two of them older than the window'
);
SELECT results_eq(
    $$SELECT outcome, (SELECT details ->> 'measure' FROM guard.alerts
        WHERE fingerprint = 'check_threshold:check:call_without_direction' AND status = 'open')
      FROM guard.detection_runs WHERE check_id = 'call_without_direction'
      ORDER BY id DESC LIMIT 1$$,
    $$VALUES ('warn'::text, '11.11'::text)$$,
    'the rate is 2 of the window''s 18 calls: 11.11 per 100, a warning (4 of 18 would fail)'
);
-- The DBA removes the thresholds: the next pass closes the alert nobody judges any more.
UPDATE guard.checks SET warn_above = NULL, error_above = NULL
WHERE id = 'call_without_direction';
SELECT guard.run_detection(now() - interval '1 hour', NULL);
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts
      WHERE fingerprint = 'check_threshold:check:call_without_direction' ORDER BY id DESC LIMIT 1$$,
    $$VALUES ('resolved'::text, 'manual'::text)$$,
    'thresholds removed: the next pass resolves the check''s threshold alert'
);
-- A disabled check is no longer judged either.
UPDATE guard.checks SET warn_above = 0, error_above = NULL, threshold_unit = 'count'
WHERE id = 'call_without_direction';
SELECT guard.run_detection(now() - interval '1 hour', NULL);
UPDATE guard.checks SET enabled = FALSE
WHERE id = 'call_without_direction';
SELECT guard.run_detection(now() - interval '1 hour', NULL);
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts
      WHERE fingerprint = 'check_threshold:check:call_without_direction' ORDER BY id DESC LIMIT 1$$,
    $$VALUES ('resolved'::text, 'manual'::text)$$,
    'check disabled: its threshold alert is resolved'
);
-- A window without calls: no row in it passes a rate (the alert of a pass that warned goes).
UPDATE guard.checks SET enabled = TRUE, threshold_unit = 'rate_pct', warn_above = 0, error_above = NULL
WHERE id = 'unknown_value';
INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message)
VALUES ('check_threshold:check:unknown_value', 'check_threshold', 'check', 'medium', 'an old warning');
SELECT guard.run_detection(now() - interval '1 minute', NULL);
SELECT results_eq(
    $$SELECT outcome FROM guard.detection_runs WHERE check_id = 'unknown_value'
      ORDER BY id DESC LIMIT 1$$,
    $$VALUES ('pass'::text)$$,
    'no calls and no offending row in the window: the rate passes'
);
SELECT results_eq(
    $$SELECT status FROM guard.alerts WHERE fingerprint = 'check_threshold:check:unknown_value'$$,
    $$VALUES ('resolved'::text)$$,
    'and its threshold alert is resolved'
);

-- An error threshold alone (no warning) is a threshold still judged: the pass that fails the
-- check keeps its alert open.
UPDATE guard.checks SET enabled = TRUE, threshold_unit = 'count', warn_above = NULL, error_above = 0
WHERE id = 'call_without_direction';
SELECT guard.run_detection(now() - interval '1 hour', NULL);
SELECT results_eq(
    $$SELECT status, severity FROM guard.alerts
      WHERE fingerprint = 'check_threshold:check:call_without_direction' ORDER BY id DESC LIMIT 1$$,
    $$VALUES ('open'::text, 'high'::text)$$,
    'only an error threshold, exceeded: the pass leaves its high alert open'
);

SELECT throws_ok(
    $$UPDATE guard.checks SET warn_above = 5, error_above = 2 WHERE id = 'unknown_value'$$,
    '23514',
    NULL,
    'a warn threshold above the error one is refused'
);
SELECT throws_ok(
    $$UPDATE guard.checks SET threshold_unit = 'ratio' WHERE id = 'unknown_value'$$,
    '23514',
    NULL,
    'an unknown unit is refused'
);

SELECT * FROM finish();
ROLLBACK;
