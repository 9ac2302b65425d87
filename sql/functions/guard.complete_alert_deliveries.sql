-- Record that alerts were sent on a channel (whoever holds the claim: the send happened), and
-- stamp guard.alerts.delivered_at on each alert whose every delivery row is now delivered (or
-- skipped by an operator: nothing more will be sent, and the enqueue stops looking at it).
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
            WHERE o.alert_id = a.id AND o.status NOT IN ('delivered', 'skipped')
        );
    RETURN marked;
END;
$$;
