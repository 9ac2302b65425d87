-- The operational rule: Booking Guard's own scheduled jobs run and succeed (no invariant). Its
-- checks (job_failed, job_missed: sql/data/guard.checks.detection_health.sql, with the other
-- operational checks) are raised and resolved by guard.run_job and guard.check_job_heartbeats;
-- their alerts name the job (entity_type job, no company).
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
