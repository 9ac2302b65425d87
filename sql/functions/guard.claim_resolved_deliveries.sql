-- Hand one channel's due resolved notifications to one dispatcher for a lease: deliveries sent
-- while their alert was open whose alert has resolved since. SKIP LOCKED and the lease
-- (claimed_by, claimed_until on the delivered row) as in guard.claim_alert_deliveries; a claim
-- whose send failed is due again when its lease ends. Rows with nothing to announce (the alert
-- had resolved before it was delivered: that message said so) are settled first. Bounded in
-- bytes as the alert claim is: the message cut, large details as an excerpt.
CREATE OR REPLACE FUNCTION guard.claim_resolved_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (
    alert_id bigint,
    attempts integer,
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
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET resolved_sent_at = d.delivered_at
    FROM guard.alerts AS a
    WHERE
        a.id = d.alert_id
        AND d.channel = claim_resolved_deliveries.delivery_channel
        AND d.status = 'delivered'
        AND d.resolved_sent_at IS NULL
        AND a.status = 'resolved'
        AND a.resolved_at <= d.delivered_at;

    RETURN QUERY
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_resolved_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_resolved_deliveries.lease_seconds)
        WHERE (d.alert_id, d.channel) IN (
            SELECT q.alert_id, q.channel
            FROM guard.alert_deliveries AS q
            INNER JOIN guard.alerts AS a ON q.alert_id = a.id
            WHERE
                q.channel = claim_resolved_deliveries.delivery_channel
                AND q.status = 'delivered'
                AND q.resolved_sent_at IS NULL
                AND a.status = 'resolved'
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY a.resolved_at, q.alert_id
            LIMIT claim_resolved_deliveries.max_rows
            FOR UPDATE OF q SKIP LOCKED
        )
        RETURNING d.alert_id, d.attempts
    )
    SELECT
        c.alert_id,
        c.attempts,
        a.check_id,
        k.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        left(a.message, 4000) AS message,
        guard.alert_details_excerpt(c.alert_id, a.details) AS details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at,
        a.resolved_at
    FROM claimed AS c
    INNER JOIN guard.alerts AS a ON c.alert_id = a.id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
END;
$$;
