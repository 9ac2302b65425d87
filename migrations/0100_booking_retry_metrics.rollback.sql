-- Rollback of 0100_booking_retry_metrics: the folded totals of the new series go (their
-- histograms and counter restart from what the tables hold, a reset Prometheus handles), the
-- counter CHECK is the narrower one again, and the journal loses its count of calendar calls.
-- Locks: ROW EXCLUSIVE on guard.metric_totals for the delete, then ACCESS EXCLUSIVE on it while
-- the CHECK is added and its scan runs (a handful of rows); ACCESS EXCLUSIVE on
-- guard.booking_attempts for an instant to drop the column (no rewrite).

DELETE FROM guard.metric_totals
WHERE counter IN ('booking_duration', 'booking_retries', 'breaker_recovery');

-- Validated at once, as before 0100: guard.metric_totals holds a few rows per counter.
ALTER TABLE guard.metric_totals
DROP CONSTRAINT metric_totals_counter_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT metric_totals_counter_check CHECK (
    counter IN ('bookings', 'validations', 'validation_failures', 'alerts_opened')
);

-- squawk-ignore ban-drop-column
ALTER TABLE guard.booking_attempts DROP COLUMN calendar_calls;
