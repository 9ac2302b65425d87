-- A sweep that runs a check through resolves that check's check_failed alert raised IN THE SWEEP,
-- and no other: not the same check's alert raised by detection or a history batch (the sweep
-- does not know whether those still fail), not another check's, not one already resolved.
BEGIN;
SELECT plan(3);

-- unknown_value is the only check the sweep runs (46_sweep.sql); call_without_direction is not
-- swept
SELECT results_eq(
    $$SELECT id FROM guard.checks WHERE enabled AND sweep AND check_view IS NOT NULL$$,
    $$VALUES ('unknown_value')$$,
    'the sweep runs unknown_value only'
);
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, details, status, resolved_at, resolution,
    last_seen_at
)
VALUES
(
    'check_failed:check:unknown_value', 'check_failed', 'check', 'high', 'in the sweep',
    '{"check": "unknown_value", "in": "sweep"}', 'open', NULL, NULL, now()
),
(
    'check_failed:check:unknown_value', 'check_failed', 'check', 'high', 'in history, resolved',
    '{"check": "unknown_value", "in": "sweep"}', 'resolved', now() - interval '1 day', 'fixed',
    now() - interval '1 day'
),
(
    'check_failed:check:call_without_direction', 'check_failed', 'check', 'high', 'other check',
    '{"check": "call_without_direction", "in": "sweep"}', 'open', NULL, NULL, now()
);
SELECT count(*) FROM guard.sweep_checks();
SELECT results_eq(
    $$SELECT message, status, resolved_at = now() FROM guard.alerts
      WHERE check_id = 'check_failed' ORDER BY id$$,
    $$VALUES ('in the sweep', 'resolved', TRUE), ('in history, resolved', 'resolved', FALSE),
             ('other check', 'open', NULL)$$,
    'the sweep resolves its own check''s sweep failure only'
);

-- the same check's failure in a detection pass: open again, and the sweep leaves it open
INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message, details)
VALUES (
    'check_failed:check:unknown_value', 'check_failed', 'check', 'high', 'in detection',
    '{"check": "unknown_value", "in": "detection"}'
);
SELECT count(*) FROM guard.sweep_checks();
SELECT results_eq(
    $$SELECT status FROM guard.alerts WHERE message = 'in detection'$$,
    $$VALUES ('open')$$,
    'the sweep leaves the same check''s failure in a detection pass open'
);

SELECT * FROM finish();
ROLLBACK;
