-- What a message about an alert shows, for the alerts a dispatcher claimed (one loader for every
-- alert delivery: a delivery, a digest, a resolved notice): the alert with its rule, the message
-- cut to 4000 characters and large details as an excerpt (guard.json_excerpt), so a claimed
-- batch is bounded in bytes, and when it resolved. An alert deleted since it was queued comes
-- back with its id only. Oldest alert first.
CREATE OR REPLACE FUNCTION guard.alerts_for_delivery(alert_ids bigint[])
RETURNS TABLE (
    alert_id bigint,
    check_id text,
    rule_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    severity text,
    message text,
    details jsonb,
    alert_status text,
    occurrences integer,
    first_seen_at timestamptz,
    last_seen_at timestamptz,
    resolved_at timestamptz
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    SELECT
        c.alert_id,
        a.check_id,
        k.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        left(a.message, 4000) AS message,
        guard.json_excerpt(
            a.details, format('SELECT details FROM guard.alerts WHERE id = %s', c.alert_id)
        ) AS details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at,
        a.resolved_at
    FROM unnest(alerts_for_delivery.alert_ids) AS c (alert_id)
    LEFT JOIN guard.alerts AS a ON c.alert_id = a.id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
$$;
