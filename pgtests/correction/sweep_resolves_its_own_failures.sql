-- A sweep that runs a check through resolves that check's check_failed alert raised IN THE SWEEP,
-- and no other: not the same kind of alert of a check raised by detection or a history batch
-- (the sweep does not know whether those still fail), not another check's, not one already
-- resolved.
BEGIN;
SELECT plan(3);

-- unknown_value is the only check the sweep runs as shipped (correction/sweep.sql); here
-- flags_contradict_appointments is swept too, and call_without_direction is not
SELECT results_eq(
    $$SELECT id FROM guard.checks WHERE enabled AND sweep AND check_view IS NOT NULL$$,
    $$VALUES ('unknown_value')$$,
    'the sweep runs unknown_value only, as shipped'
);
UPDATE guard.checks SET sweep = TRUE
WHERE id = 'flags_contradict_appointments';
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, details, status, resolved_at, resolution,
    last_seen_at
)
VALUES
(
    'check_failed:check:unknown_value', 'check_failed', 'check', 'high', 'swept check, in the sweep',
    '{"check": "unknown_value", "in": "sweep"}', 'open', NULL, NULL, now()
),
(
    'check_failed:check:unknown_value', 'check_failed', 'check', 'high', 'swept check, resolved',
    '{"check": "unknown_value", "in": "sweep"}', 'resolved', now() - interval '1 day', 'fixed',
    now() - interval '1 day'
),
(
    'check_failed:check:flags_contradict_appointments', 'check_failed', 'check', 'high',
    'swept check, in detection', '{"check": "flags_contradict_appointments", "in": "detection"}',
    'open', NULL, NULL, now()
),
(
    'check_failed:check:call_without_direction', 'check_failed', 'check', 'high',
    'check not swept, in the sweep', '{"check": "call_without_direction", "in": "sweep"}', 'open',
    NULL, NULL, now()
);

SELECT results_eq(
    $$SELECT check_id, offending FROM guard.sweep_checks() ORDER BY check_id$$,
    $$VALUES ('flags_contradict_appointments', 0), ('unknown_value', 0)$$,
    'the sweep runs both through'
);
SELECT results_eq(
    $$SELECT message, status, resolved_at = now() FROM guard.alerts
      WHERE check_id = 'check_failed' ORDER BY message$$,
    $$VALUES
        ('check not swept, in the sweep', 'open', NULL::boolean),
        ('swept check, in detection', 'open', NULL),
        ('swept check, in the sweep', 'resolved', TRUE),
        ('swept check, resolved', 'resolved', FALSE)$$,
    'the sweep resolves a swept check''s failure in the sweep, and nothing else'
);

SELECT * FROM finish();
ROLLBACK;
