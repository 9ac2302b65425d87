-- Skipping an alert backlog without SQL (`guard watch --skip-before TIME`): a delivery may be
-- 'skipped', and every skip is recorded (who, when, up to when, on which channels, how many) in
-- guard.delivery_skips. The widened CHECK is added NOT VALID and validated by
-- 0022a_operator_alerts_validate, so this migration holds the ACCESS EXCLUSIVE lock on the
-- delivery table (catalog only, under the migrator's lock_timeout and retries) without scanning.

-- One statement, so no moment without the CHECK; the new one accepts every value the old one did.
ALTER TABLE guard.alert_deliveries
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT alert_deliveries_status_check,
ADD CONSTRAINT alert_deliveries_status_check
CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')) NOT VALID;

-- One row per `guard watch --skip-before`: the audit of deliveries an operator chose not to send.
CREATE TABLE guard.delivery_skips (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    skipped_by text NOT NULL CHECK (skipped_by <> ''),
    database_role text NOT NULL DEFAULT current_user,
    seen_before timestamptz NOT NULL,
    channels text[] NOT NULL CHECK (cardinality(channels) > 0),
    deliveries integer NOT NULL CHECK (deliveries >= 0)
);

-- Mark skipped every pending delivery, on the given channels, of an alert last seen before
-- seen_before, and create skipped rows for such alerts the dispatcher has not queued yet (it
-- queues on its next round, and would send them). An alert seen again since is current news and
-- stays pending; a delivery of an alert deleted by retention is skipped. A delivery claimed by a
-- running dispatcher is skipped too: that send may still happen, it is not marked delivered.
-- Records the skip in guard.delivery_skips and returns the number of deliveries skipped.
CREATE FUNCTION guard.skip_alert_deliveries(
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
    INSERT INTO guard.alert_deliveries (alert_id, channel, status)
    SELECT a.id, ch.channel, 'skipped'
    FROM guard.alerts AS a
    CROSS JOIN pg_catalog.unnest(skip_alert_deliveries.channels) AS ch (channel)
    WHERE a.delivered_at IS NULL AND a.last_seen_at < skip_alert_deliveries.seen_before
    ON CONFLICT (alert_id, channel) DO NOTHING;
    GET DIAGNOSTICS queued = ROW_COUNT;

    UPDATE guard.alert_deliveries AS d
    SET status = 'skipped', claimed_by = NULL, claimed_until = NULL
    WHERE
        d.status = 'pending'
        AND d.channel = ANY(skip_alert_deliveries.channels)
        AND NOT EXISTS (
            SELECT
            FROM guard.alerts AS a
            WHERE a.id = d.alert_id AND a.last_seen_at >= skip_alert_deliveries.seen_before
        );
    GET DIAGNOSTICS marked = ROW_COUNT;

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

DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
