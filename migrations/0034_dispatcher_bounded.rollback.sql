-- Rollback of 0034_dispatcher_bounded: the claims return whole details again (the indexes are
-- 0034a_dispatcher_bounded_index's).

CREATE OR REPLACE FUNCTION guard.release_alert_deliveries(delivery_channel text, worker text)
RETURNS integer
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
DECLARE
    released integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET claimed_by = NULL, claimed_until = NULL
    WHERE
        d.channel = release_alert_deliveries.delivery_channel
        AND d.claimed_by = release_alert_deliveries.worker
        AND d.status = 'pending';
    GET DIAGNOSTICS released = ROW_COUNT;
    RETURN released;
END;
$function$;

CREATE OR REPLACE FUNCTION guard.claim_resolved_deliveries(delivery_channel text, worker text, max_rows integer, lease_seconds double precision)
RETURNS TABLE (alert_id bigint, attempts integer, check_id text, rule_id text, company_id bigint, entity_type text, entity_id bigint, severity text, message text, details jsonb, alert_status text, occurrences integer, first_seen_at timestamp with time zone, last_seen_at timestamp with time zone, resolved_at timestamp with time zone)
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
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
        a.message,
        a.details,
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
$function$;

CREATE OR REPLACE FUNCTION guard.claim_alert_deliveries(delivery_channel text, worker text, max_rows integer, lease_seconds double precision)
RETURNS TABLE (alert_id bigint, attempts integer, check_id text, rule_id text, company_id bigint, entity_type text, entity_id bigint, severity text, message text, details jsonb, alert_status text, occurrences integer, first_seen_at timestamp with time zone, last_seen_at timestamp with time zone)
LANGUAGE sql
SET search_path TO 'pg_catalog'
AS $function$
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_alert_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_alert_deliveries.lease_seconds)
        WHERE (d.alert_id, d.channel) IN (
            SELECT q.alert_id, q.channel
            FROM guard.alert_deliveries AS q
            WHERE
                q.channel = claim_alert_deliveries.delivery_channel
                AND q.status = 'pending'
                AND q.next_attempt_at <= now()
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY q.next_attempt_at, q.alert_id
            LIMIT claim_alert_deliveries.max_rows
            FOR UPDATE SKIP LOCKED
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
        a.message,
        a.details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at
    FROM claimed AS c
    LEFT JOIN guard.alerts AS a ON a.id = c.alert_id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
$function$;

DROP FUNCTION guard.alert_details_excerpt(alert_id bigint, details jsonb);
