-- 0100d_booking_attempt_trace_id_validate: validate the CHECK 0100c_booking_attempt_trace_id
-- added NOT VALID. Every row written before 0100c has no trace id, so the scan cannot fail.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.booking_attempts while VALIDATE scans (the booking path
-- writes on).

ALTER TABLE guard.booking_attempts VALIDATE CONSTRAINT booking_attempts_trace_id_check;
