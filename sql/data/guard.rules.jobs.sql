-- The operational rule: Booking Guard's own scheduled jobs run and succeed (no invariant). Its
-- checks are raised and resolved by guard.run_job and guard.check_job_heartbeats; their alerts
-- name the job (entity_type job, no company).
INSERT INTO guard.rules AS r (id, invariant, severity, description, remedy) VALUES
(
    'job_health', NULL, 'high',
    'Every scheduled Booking Guard job succeeds at least once within twice its interval.',
    'report'
)
ON CONFLICT (id) DO UPDATE SET
    invariant = excluded.invariant,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy
WHERE (
    r.invariant, r.severity, r.description, r.remedy
) IS DISTINCT FROM (
    excluded.invariant, excluded.severity, excluded.description, excluded.remedy
);

INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy) VALUES
(
    'job_failed', 'job_health', 'high',
    'A scheduled Booking Guard job failed; its work was rolled back. Resolved by its next success.',
    'report'
),
(
    'job_missed', 'job_health', 'high',
    'A scheduled Booking Guard job has not succeeded within twice its interval.',
    'report'
)
ON CONFLICT (id) DO UPDATE SET
    rule_id = excluded.rule_id,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy
WHERE (
    k.rule_id, k.severity, k.description, k.remedy
) IS DISTINCT FROM (
    excluded.rule_id, excluded.severity, excluded.description, excluded.remedy
);
