-- 0100_booking_retry_metrics: the booking journal records how many times the booking path asked
-- the calendar for an attempt (`calendar_calls`: 1 without a retry, 0 when the breaker refused
-- before the calendar was asked), so that `guard metrics` can count retries by outcome
-- (guard_booking_retries_total) from the journal, whichever application process booked; and
-- guard.metric_totals keeps the folded totals of the new series (the booking duration and
-- breaker recovery histograms, the retries counter), so that they survive retention as the
-- other counters do (docs/metrics.md). Attempts settled before this migration, and attempts
-- settled by recover_attempts, a reconciliation or a person, have no count (NULL) and are left
-- out of the retry and duration series.
-- Both CHECKs are added NOT VALID (new rows are checked at once) and validated by 0100a; every
-- existing row meets them (the column is NULL everywhere, the counter list only grows).
-- Locks: ACCESS EXCLUSIVE on guard.booking_attempts and on guard.metric_totals for an instant
-- each (a nullable column without a default is a catalog change; NOT VALID: no scan).

ALTER TABLE guard.booking_attempts
ADD COLUMN calendar_calls integer;

ALTER TABLE guard.booking_attempts
ADD CONSTRAINT booking_attempts_calendar_calls_check CHECK (calendar_calls >= 0) NOT VALID;

-- One statement, so no moment without the CHECK; the new one accepts every value the old one did.
ALTER TABLE guard.metric_totals
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT metric_totals_counter_check,
ADD CONSTRAINT metric_totals_counter_check CHECK (
    counter IN (
        'bookings', 'validations', 'validation_failures', 'alerts_opened',
        'booking_duration', 'booking_retries', 'breaker_recovery'
    )
) NOT VALID;
