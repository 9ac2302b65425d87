-- Rollback of 0095_detection_queue. A grace period still at 0095's default goes back to 300 s;
-- the job and setting rows sql/data/ created go with the rollback of the definitions (as every
-- registry row a data file created). Calls still queued are left to the windowed detection pass.
-- Locks: ROW EXCLUSIVE on guard.settings (one row); ACCESS EXCLUSIVE on the queue it drops.
UPDATE guard.settings SET value = '300'::jsonb
WHERE key = 'grace_period_seconds' AND value = '30'::jsonb;

DROP TABLE guard.detection_queue;
