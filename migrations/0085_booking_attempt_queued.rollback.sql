-- Rollback of 0085_booking_attempt_queued: attempts settled as queued become failed again (what
-- they were before 0085: their call was rolled back and queued for review either way), and the
-- state CHECK is the narrower one.
-- Locks: ROW EXCLUSIVE on guard.booking_attempts for the update, then ACCESS EXCLUSIVE while the
-- CHECK is added and its scan runs.

UPDATE guard.booking_attempts SET state = 'failed'
WHERE state = 'queued';

-- Validated at once, as before 0085: the scan holds the lock while it reads the journal (every
-- row passes after the UPDATE above). A rollback is a planned step, not a hot path.
ALTER TABLE guard.booking_attempts
DROP CONSTRAINT booking_attempts_state_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT booking_attempts_state_check CHECK (
    state IN ('calling', 'booked', 'failed', 'unknown', 'recovered')
);
