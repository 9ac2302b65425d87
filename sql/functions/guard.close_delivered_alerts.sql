-- Stamp guard.alerts.delivered_at on each of these alerts whose every delivery row is now
-- delivered or skipped: nothing more will be sent, and the dispatcher's enqueue
-- (alerts_undelivered_idx) stops looking at it. The one rule of "an alert is done" for the
-- alert outbox's settles (guard.settle_deliveries, guard.skip_alert_deliveries,
-- guard.skip_alert_deliveries_below). Returns the alerts stamped.
CREATE OR REPLACE FUNCTION guard.close_delivered_alerts(alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    closed integer;
BEGIN
    UPDATE guard.alerts AS a
    SET delivered_at = now()
    WHERE
        a.id = ANY(close_delivered_alerts.alert_ids)
        AND a.delivered_at IS NULL
        AND NOT EXISTS (
            SELECT
            FROM guard.deliveries AS o
            WHERE o.kind = 'alert' AND o.subject = a.id AND o.status NOT IN ('delivered', 'skipped')
        );
    GET DIAGNOSTICS closed = ROW_COUNT;
    RETURN closed;
END;
$$;
