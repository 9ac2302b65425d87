-- Give every alert not yet delivered everywhere a pending delivery row for each of the
-- dispatcher's channels (idempotent: existing rows are left alone). Returns the rows added.
CREATE OR REPLACE FUNCTION guard.enqueue_alert_deliveries(channels text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    added integer;
BEGIN
    INSERT INTO guard.alert_deliveries (alert_id, channel)
    SELECT a.id, ch.channel
    FROM guard.alerts AS a
    CROSS JOIN pg_catalog.unnest(enqueue_alert_deliveries.channels) AS ch (channel)
    WHERE a.delivered_at IS NULL
    ON CONFLICT (alert_id, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;
