-- Rollback of 0095_detection_queue. A grace period still at 0095's default goes back to 300 s,
-- with its description.
-- The job's runs stay in guard.job_runs, as those of a removed job do; its pg_cron entry goes when
-- the definitions of the level rolled back to schedule the jobs again. Calls still queued are
-- left to the windowed detection pass.
-- Locks: ROW EXCLUSIVE on guard.settings and guard.jobs; ACCESS EXCLUSIVE on the queue it drops.
DELETE FROM guard.jobs
WHERE name = 'detect_queue';

DELETE FROM guard.settings
WHERE key = 'detection_queue_batch';

UPDATE guard.settings SET value = '300'::jsonb
WHERE key = 'grace_period_seconds' AND value = '30'::jsonb;

-- the description sql/data/ gave it with 0095 (nothing below 0095 writes it again)
UPDATE guard.settings SET description = 'How long a call may claim appointment_booked before an appointment exists.'
WHERE key = 'grace_period_seconds';

DROP TABLE guard.detection_queue;
