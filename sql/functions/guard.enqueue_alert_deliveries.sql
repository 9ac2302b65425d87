-- Give every alert not yet delivered everywhere a pending delivery (guard.deliveries, kind alert) for each of the
-- dispatcher's channels (idempotent: existing rows are left alone). A batch at a time: the
-- undelivered alerts after after_alert, the first max_alerts of them in id order (on
-- alerts_undelivered_idx), so one call's work is bounded whatever the backlog and fits a login's
-- statement_timeout; the dispatcher walks the backlog with last_alert (NULL: nothing was left
-- after after_alert) and makes the batch smaller when one was cut. Without max_alerts, all of them.
-- added: the rows added.
CREATE OR REPLACE FUNCTION guard.enqueue_alert_deliveries(
    channels text[],
    after_alert bigint DEFAULT 0,
    max_alerts integer DEFAULT NULL,
    OUT added integer,
    OUT last_alert bigint
)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    SELECT max(b.id) INTO last_alert
    FROM (
        SELECT a.id
        FROM guard.alerts AS a
        WHERE a.delivered_at IS NULL AND a.id > enqueue_alert_deliveries.after_alert
        ORDER BY a.id
        LIMIT enqueue_alert_deliveries.max_alerts
    ) AS b;
    IF last_alert IS NULL THEN
        added := 0;
        RETURN;
    END IF;
    INSERT INTO guard.deliveries (kind, subject, channel)
    SELECT 'alert', a.id, ch.channel
    FROM guard.alerts AS a
    CROSS JOIN pg_catalog.unnest(enqueue_alert_deliveries.channels) AS ch (channel)
    WHERE
        a.delivered_at IS NULL
        AND a.id > enqueue_alert_deliveries.after_alert
        AND a.id <= last_alert
    ON CONFLICT (kind, subject, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
END;
$$;
