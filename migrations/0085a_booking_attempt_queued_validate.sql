-- 0085a_booking_attempt_queued_validate: validate the state CHECK 0085_booking_attempt_queued
-- added NOT VALID. It is wider than the one it replaced, so the scan cannot fail.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.booking_attempts while VALIDATE scans (the booking path
-- writes on).

ALTER TABLE guard.booking_attempts VALIDATE CONSTRAINT booking_attempts_state_check;
