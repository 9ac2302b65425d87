-- guard.check_job_heartbeats at its edges: a job that never succeeded is named "never" in its
-- alert (not an empty value), and a job_missed alert resolved earlier is history: a later check
-- leaves when and how it was resolved alone.
BEGIN;
SELECT plan(2);

-- every job configured 60 days ago (past the trigger that stamps updated_at) and never run,
-- but detect, which succeeded a minute ago
SET LOCAL session_replication_role = replica;
UPDATE guard.jobs SET updated_at = now() - interval '60 days';
SET LOCAL session_replication_role = origin;
DELETE FROM guard.job_runs;
INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, duration_ms)
VALUES ('detect', now() - interval '1 min', now() - interval '1 min', 'succeeded', 5);
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, status, resolved_at, resolution
)
VALUES (
    'job_missed:job:detect', 'job_missed', 'job', 'high', 'earlier', 'resolved',
    now() - interval '2 days', 'fixed'
);

SELECT guard.check_job_heartbeats();
SELECT matches(
    (
        SELECT message FROM guard.alerts
        WHERE fingerprint = 'job_missed:job:sweep' AND status = 'open'
    ),
    'last success: never$',
    'check_job_heartbeats: a job that never succeeded is named "never"'
);
SELECT results_eq(
    $$SELECT resolved_at = now() - interval '2 days', resolution FROM guard.alerts
      WHERE fingerprint = 'job_missed:job:detect'$$,
    $$VALUES (TRUE, 'fixed')$$,
    'check_job_heartbeats: a job_missed alert resolved earlier keeps when and how'
);

SELECT * FROM finish();
ROLLBACK;
