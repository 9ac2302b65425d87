-- Operational rules: raised and resolved by guard.run_job and guard.check_job_heartbeats (no
-- check view, no invariant). Their alerts name the job (entity_type job, no company).
INSERT INTO guard.rules (id, invariant, severity, description, remedy, mode, stage) VALUES
(
    'job_failed', NULL, 'high',
    'A scheduled Booking Guard job failed; its work was rolled back. Resolved by its next success.',
    'report', 'correct', 'observe'
),
(
    'job_missed', NULL, 'high',
    'A scheduled Booking Guard job has not succeeded within twice its interval.',
    'report', 'correct', 'observe'
);
