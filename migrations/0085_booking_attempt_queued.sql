-- 0085_booking_attempt_queued: a booking attempt the breaker refused (the service's circuit open,
-- or its bulkhead full: the calendar was not asked) is settled as `queued`, apart from `failed`
-- (the calendar failed, or the booking did not validate or record). The call is rolled back and
-- queued for review as before; the journal, the counters of `guard metrics` and the failure-rate
-- check now tell a queue behind an open circuit from a failed booking, so the failure-rate alert
-- no longer fires beside the circuit-open one. Attempts settled earlier keep their state: the
-- journal did not say which failures were queues.
-- The state CHECK is replaced by a wider one, added NOT VALID (new rows are checked at once) and
-- validated by 0085a; every existing row meets it.
-- Locks: ACCESS EXCLUSIVE on guard.booking_attempts for an instant to swap the CHECK (NOT VALID:
-- no scan).

-- One statement, so no moment without the CHECK; the new one accepts every value the old one did.
ALTER TABLE guard.booking_attempts
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT booking_attempts_state_check,
ADD CONSTRAINT booking_attempts_state_check CHECK (
    state IN ('calling', 'booked', 'failed', 'queued', 'unknown', 'recovered')
) NOT VALID;
