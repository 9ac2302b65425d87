-- Mark skipped a channel's pending deliveries of alerts below its minimum severity (`guard watch
-- --min-severity CHANNEL=SEVERITY`; severities from critical down to high, medium, low), and
-- record them in guard.delivery_skips (below_severity; seen_before: now) when there were any,
-- so that an alert not sent there does not look lost. A delivery claimed by a running
-- dispatcher is left alone while its lease lasts (its send may be under way). An alert then
-- skipped or delivered on every channel is closed (guard.close_delivered_alerts). Returns the
-- deliveries skipped.
CREATE OR REPLACE FUNCTION guard.skip_alert_deliveries_below(
    delivery_channel text, min_severity text, actor text
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    ranks constant text[] := ARRAY['critical', 'high', 'medium', 'low'];
    floor_rank integer := array_position(ranks, skip_alert_deliveries_below.min_severity);
    skipped bigint[];
BEGIN
    IF floor_rank IS NULL THEN
        RAISE EXCEPTION 'unknown severity %: one of critical, high, medium, low',
        quote_literal(skip_alert_deliveries_below.min_severity)
        USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH marked AS (
        UPDATE guard.deliveries AS d
        SET status = 'skipped', claimed_by = NULL, claimed_until = NULL
        FROM guard.alerts AS a
        WHERE
            d.kind = 'alert'
            AND d.channel = skip_alert_deliveries_below.delivery_channel
            AND d.status = 'pending'
            AND (d.claimed_until IS NULL OR d.claimed_until < now())
            AND a.id = d.subject
            AND array_position(ranks, a.severity) > floor_rank
        RETURNING d.subject
    )

    SELECT coalesce(array_agg(m.subject), '{}') INTO skipped FROM marked AS m;
    IF cardinality(skipped) = 0 THEN
        RETURN 0;
    END IF;

    PERFORM guard.close_delivered_alerts(skipped);

    INSERT INTO guard.delivery_skips (
        skipped_by, seen_before, channels, deliveries, below_severity
    )
    VALUES (
        skip_alert_deliveries_below.actor,
        now(),
        ARRAY[skip_alert_deliveries_below.delivery_channel],
        cardinality(skipped),
        skip_alert_deliveries_below.min_severity
    );
    RETURN cardinality(skipped);
END;
$$;
