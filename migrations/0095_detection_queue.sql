-- 0095_detection_queue: detection at commit (docs/jobs.md, "Detection at commit"). A call whose
-- outcome or booking flags the application writes while it has no active appointment is queued
-- by the calls trigger (guard.check_flag_write) in guard.detection_queue; guard watch, woken by
-- NOTIFY guard_detection_queue, checks it at once, and the detect_queue job (every 15 s; every
-- minute on pg_cron before 1.5) drains what no watcher took, detection_queue_batch calls a
-- transaction (both rows of sql/data/). The shipped grace period of a claimed booking goes from 300 s to
-- 30 s: the booking path commits the appointment and the call's booked state in one transaction,
-- and its longest calendar call is 20 s (the retry deadline, 10 s, plus one attempt's call
-- timeout, 10 s). A grace period an operator has set is kept.
-- Locks: none on the booking tables; ROW EXCLUSIVE on guard.settings (one row).
CREATE TABLE guard.detection_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id bigint NOT NULL,
    due_at timestamptz NOT NULL DEFAULT now()
);

UPDATE guard.settings SET value = '30'::jsonb
WHERE key = 'grace_period_seconds' AND value = '300'::jsonb;
