-- guard.judge_check_threshold judges nothing without both a threshold and a measure: a check
-- without thresholds, or a measure that is NULL, gives no outcome (NULL), and an open threshold
-- alert of the check stays open (only a measured pass resolves it). And a measure exactly at a
-- threshold is not above it; a threshold not set is named '-' in the alert.
BEGIN;
SELECT plan(7);

UPDATE guard.checks SET warn_above = 1, error_above = 3
WHERE id = 'unknown_value';
UPDATE guard.checks SET warn_above = NULL, error_above = NULL
WHERE id = 'call_without_direction';
INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message)
VALUES ('check_threshold:check:unknown_value', 'check_threshold', 'check', 'medium', 'x');

SELECT is(
    guard.judge_check_threshold('call_without_direction', 5),
    NULL,
    'judge_check_threshold: a check without thresholds has no outcome'
);
SELECT is(
    guard.judge_check_threshold('unknown_value', NULL),
    NULL,
    'judge_check_threshold: no measure, no outcome'
);
SELECT is(
    (
        SELECT status FROM guard.alerts
        WHERE fingerprint = 'check_threshold:check:unknown_value'
    ),
    'open',
    'judge_check_threshold: without a measure the open threshold alert stays open'
);
SELECT is(
    guard.judge_check_threshold('unknown_value', 0),
    'pass',
    'judge_check_threshold: a measure under both thresholds passes'
);

SELECT results_eq(
    $$SELECT m, guard.judge_check_threshold('unknown_value', m) FROM unnest(ARRAY[1, 2, 3, 4]::numeric []) AS m$$,
    $$VALUES (1::numeric, 'pass'::text), (2, 'warn'), (3, 'warn'), (4, 'fail')$$,
    'judge_check_threshold: above a threshold, not at it (warn above 1, error above 3)'
);

-- a check with one threshold: its alert names the other as '-'
UPDATE guard.checks SET warn_above = NULL, error_above = 3
WHERE id = 'unknown_value';
UPDATE guard.checks SET warn_above = 1, error_above = NULL
WHERE id = 'call_without_direction';
SELECT results_eq(
    $$SELECT guard.judge_check_threshold(c, m)
      FROM (VALUES ('unknown_value', 4::numeric), ('call_without_direction', 2)) AS v (c, m)$$,
    $$VALUES ('fail'::text), ('warn')$$,
    'judge_check_threshold: with one threshold set'
);
SELECT results_eq(
    $$SELECT a.message FROM guard.alerts AS a
      WHERE a.fingerprint LIKE 'check_threshold:check:%' AND a.status = 'open' ORDER BY a.message$$,
    $$VALUES
        ('check call_without_direction is above its warn threshold: 2 rows (warn above 1, error above -)'::text),
        ('check unknown_value is above its error threshold: 4 rows (warn above -, error above 3)')$$,
    'judge_check_threshold: a threshold not set is shown as -'
);

SELECT * FROM finish();
ROLLBACK;
