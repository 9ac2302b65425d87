-- Record that a digest was sent on a channel: its alerts' deliveries marked delivered (as
-- guard.settle_deliveries does, guard.alerts.delivered_at included) and the period
-- recorded in guard.alert_digests, in one transaction, so a period is recorded only with the
-- alerts it covered. A second message for the same period (more alerts than one claim takes)
-- adds to its row. Returns the delivery rows newly marked.
CREATE OR REPLACE FUNCTION guard.complete_alert_digest(
    delivery_channel text, period_end timestamptz, alert_ids bigint[]
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
DECLARE
    marked integer;
BEGIN
    marked := guard.settle_deliveries(
        'alert', complete_alert_digest.delivery_channel, complete_alert_digest.alert_ids
    );
    INSERT INTO guard.alert_digests AS g (channel, period_end, alerts)
    VALUES (complete_alert_digest.delivery_channel, complete_alert_digest.period_end, marked)
    ON CONFLICT (channel, period_end) DO UPDATE
        SET
            alerts = g.alerts + excluded.alerts,
            messages = g.messages + 1,
            sent_at = excluded.sent_at;
    RETURN marked;
END;
$$;
