-- Undo 0022_operator_alerts: resolved notifications go (their column and functions), skipped
-- deliveries become failed ones (they were not sent and are
-- not retried either), the skip function and its audit table go, the CHECK is narrowed again.

DROP FUNCTION guard.complete_resolved_deliveries(text, bigint[]);

DROP FUNCTION guard.claim_resolved_deliveries(text, text, integer, double precision);

ALTER TABLE guard.alert_deliveries DROP COLUMN resolved_sent_at;

DROP FUNCTION guard.skip_alert_deliveries(timestamptz, text[], text);

DROP TABLE guard.delivery_skips;

UPDATE guard.alert_deliveries SET status = 'failed', last_error = 'skipped by an operator'
WHERE status = 'skipped';

-- Validated at once, as before 0022: the scan holds the lock while it reads the delivery table
-- (every row passes after the UPDATE above). A rollback is a planned step, not a hot path.
ALTER TABLE guard.alert_deliveries
DROP CONSTRAINT alert_deliveries_status_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT alert_deliveries_status_check
CHECK (status IN ('pending', 'delivered', 'failed'));
