-- I7, the booking journal and the booking path.
-- What retrying did for a settled booking attempt, the label `outcome` of
-- guard_booking_retries_total (`guard metrics`, docs/metrics.md), from the number of times the
-- booking path asked the calendar:
--   not_retried            asked once (booked, failed, or queued when the circuit refused the
--                          retry)
--   succeeded_after_retry  asked more than once, and booked
--   exhausted              asked more than once, and not booked: the retries ran out (attempts,
--                          deadline, budget), the circuit refused the next one, or the last
--                          answer failed, did not validate or could not be recorded
-- NULL (not counted): the calendar was never asked (0: the breaker refused at once), or the
-- count is unknown (NULL: settled by recover_attempts, a reconciliation or a person, or before
-- migration 0100), or the attempt is not settled.
-- LANGUAGE sql, IMMUTABLE, no SET clause: the planner inlines it.
CREATE OR REPLACE FUNCTION guard.booking_retry_outcome(state text, calendar_calls integer)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE
    WHEN
        booking_retry_outcome.state IS NULL
        OR booking_retry_outcome.state NOT IN ('booked', 'failed', 'queued')
        THEN NULL
    WHEN booking_retry_outcome.calendar_calls = 1 THEN 'not_retried'
    WHEN booking_retry_outcome.calendar_calls > 1 AND booking_retry_outcome.state = 'booked'
        THEN 'succeeded_after_retry'
    WHEN booking_retry_outcome.calendar_calls > 1 THEN 'exhausted'
END;
