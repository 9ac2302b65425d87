-- 0100a_booking_retry_metrics_validate: validate the two CHECKs 0100_booking_retry_metrics added
-- NOT VALID. Every existing row meets them (calendar_calls is NULL on every row written before
-- 0100; the counter list is wider than the one it replaced), so the scans cannot fail.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.booking_attempts and on guard.metric_totals while each
-- VALIDATE scans (the booking path and the retention job write on).

ALTER TABLE guard.booking_attempts VALIDATE CONSTRAINT booking_attempts_calendar_calls_check;

ALTER TABLE guard.metric_totals VALIDATE CONSTRAINT metric_totals_counter_check;
