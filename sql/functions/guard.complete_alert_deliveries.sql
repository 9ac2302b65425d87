-- Record that alerts were sent on a channel (whoever holds the claim: the send happened), and
-- close each alert whose every delivery row is now delivered or skipped
-- (guard.close_delivered_alerts).
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

    PERFORM guard.close_delivered_alerts(complete_alert_deliveries.alert_ids);
    RETURN marked;
END;
$$;
