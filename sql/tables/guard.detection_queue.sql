-- Calls a commit queued for detection at once (docs/jobs.md, "Detection at commit"): the calls
-- trigger of a flag write (guard.check_flag_write) queues a call whose outcome or booking flags
-- the application wrote while it has no active appointment, the write that ends a call that did
-- not book, or claims a booking it does not have (a phantom in the making). guard watch (woken
-- by NOTIFY guard_detection_queue) and the detect_queue job take the due rows
-- (guard.drain_detection_queue) and check each call (guard.run_checks, as check_call does) in
-- the transaction that removes them. due_at: now for a new row; a claimed booking still inside
-- its grace period is queued again for the end of it.
-- No foreign key: the application's write pays for nothing but the row, and a call deleted
-- meanwhile is skipped by the drain.
CREATE TABLE guard.detection_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id bigint NOT NULL,
    due_at timestamptz NOT NULL DEFAULT now()
);
