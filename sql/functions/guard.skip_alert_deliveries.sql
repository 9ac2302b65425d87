-- Mark skipped every pending delivery, on the given channels, of an alert last seen before
-- seen_before, and create skipped rows for such alerts the dispatcher has not queued yet (it
-- queues on its next round, and would send them). An alert seen again since is current news and
-- stays pending; a delivery of an alert deleted by retention is skipped. A delivery claimed by a
-- running dispatcher is skipped too: that send may still happen, it is not marked delivered.
-- An alert then skipped or delivered on every channel is closed (guard.close_delivered_alerts).
-- Records the skip in guard.delivery_skips and returns the number of deliveries skipped.
CREATE OR REPLACE FUNCTION guard.skip_alert_deliveries(
    seen_before timestamptz, channels text[], actor text
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    queued integer;
    marked integer;
BEGIN
    INSERT INTO guard.deliveries (kind, subject, channel, status)
    SELECT 'alert', a.id, ch.channel, 'skipped'
    FROM guard.alerts AS a
    CROSS JOIN pg_catalog.unnest(skip_alert_deliveries.channels) AS ch (channel)
    WHERE a.delivered_at IS NULL AND a.last_seen_at < skip_alert_deliveries.seen_before
    ON CONFLICT (kind, subject, channel) DO NOTHING;
    GET DIAGNOSTICS queued = ROW_COUNT;

    UPDATE guard.deliveries AS d
    SET status = 'skipped', claimed_by = NULL, claimed_until = NULL
    WHERE
        d.kind = 'alert'
        AND d.status = 'pending'
        AND d.channel = ANY(skip_alert_deliveries.channels)
        AND NOT EXISTS (
            SELECT
            FROM guard.alerts AS a
            WHERE a.id = d.subject AND a.last_seen_at >= skip_alert_deliveries.seen_before
        );
    GET DIAGNOSTICS marked = ROW_COUNT;

    -- An alert with nothing left to send anywhere is done, so the dispatcher's enqueue stops
    -- re-reading a skipped backlog every round.
    PERFORM guard.close_delivered_alerts(ARRAY(
        SELECT a.id
        FROM guard.alerts AS a
        WHERE a.delivered_at IS NULL AND a.last_seen_at < skip_alert_deliveries.seen_before
    ));

    INSERT INTO guard.delivery_skips (skipped_by, seen_before, channels, deliveries)
    VALUES (
        skip_alert_deliveries.actor,
        skip_alert_deliveries.seen_before,
        skip_alert_deliveries.channels,
        queued + marked
    );
    RETURN queued + marked;
END;
$$;
