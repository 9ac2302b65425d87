-- A job is overdue after twice its interval without a success, not one second earlier: the
-- boundary itself (now() is fixed inside this transaction), and the heartbeat check keeps the
-- alert of a job that is still overdue open.
BEGIN;
SELECT plan(3);

INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description, updated_at) VALUES
('at_twice', '* * * * *', 60, 'SELECT 1', 'test job', now() - interval '120 s'),
('past_twice', '* * * * *', 60, 'SELECT 1', 'test job', now() - interval '120.001 s');
SELECT results_eq(
    $$SELECT job_name, overdue FROM guard.job_status
      WHERE job_name IN ('at_twice', 'past_twice') ORDER BY job_name$$,
    $$VALUES ('at_twice', FALSE), ('past_twice', TRUE)$$,
    'overdue after twice the interval without a success, not at exactly twice'
);
SELECT ok(guard.check_job_heartbeats() >= 1, 'the heartbeat check counts the overdue job');
SELECT results_eq(
    $$SELECT fingerprint, status FROM guard.alerts
      WHERE check_id = 'job_missed' AND fingerprint LIKE 'job_missed:job:%_twice' ORDER BY 1$$,
    $$VALUES ('job_missed:job:past_twice', 'open')$$,
    'the overdue job''s alert is open; the job exactly at twice its interval has none'
);

SELECT * FROM finish();
ROLLBACK;
