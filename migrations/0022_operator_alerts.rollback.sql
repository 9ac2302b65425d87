-- Undo 0022_operator_alerts: resolved notifications go (their column and functions), skipped
-- deliveries become failed ones (they were not sent and are
-- not retried either), the skip function and its audit table go, the CHECK is narrowed again.

DROP FUNCTION guard.complete_resolved_deliveries(text, bigint[]);

DROP FUNCTION guard.claim_resolved_deliveries(text, text, integer, double precision);

ALTER TABLE guard.alert_deliveries DROP COLUMN resolved_sent_at;

DROP FUNCTION guard.skip_alert_deliveries(timestamptz, text[], text);

-- Record that alerts were sent on a channel (whoever holds the claim: the send happened), and
-- stamp guard.alerts.delivered_at on each alert whose every delivery row is now delivered.
-- Returns the delivery rows newly marked.
CREATE OR REPLACE FUNCTION guard.complete_alert_deliveries(delivery_channel text, alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET
        status = 'delivered',
        delivered_at = now(),
        attempts = d.attempts + 1,
        last_error = NULL,
        claimed_by = NULL,
        claimed_until = NULL
    WHERE
        d.channel = complete_alert_deliveries.delivery_channel
        AND d.alert_id = ANY(complete_alert_deliveries.alert_ids)
        AND d.status = 'pending';
    GET DIAGNOSTICS marked = ROW_COUNT;

    UPDATE guard.alerts AS a
    SET delivered_at = now()
    WHERE
        a.id = ANY(complete_alert_deliveries.alert_ids)
        AND a.delivered_at IS NULL
        AND NOT EXISTS (
            SELECT
            FROM guard.alert_deliveries AS o
            WHERE o.alert_id = a.id AND o.status <> 'delivered'
        );
    RETURN marked;
END;
$$;


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
