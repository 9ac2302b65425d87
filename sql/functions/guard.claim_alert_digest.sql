-- Hand a digest channel's due alert deliveries to one dispatcher for a lease: the pending ones of
-- alerts opened before the start of the current digest period (periods of period_hours, counted
-- from 1970-01-01 00:00 UTC: 24 ends them at midnight UTC), and of alerts deleted since. SKIP
-- LOCKED and the lease as in guard.claim_alert_deliveries, so two dispatchers never send one
-- alert in two digests; a claim whose send failed, or whose dispatcher died, is due again when
-- its lease ends. An alert opened in the current period waits for the next digest. Returns the
-- claimed alerts as guard.claim_alert_deliveries does, each with the end of the period it is
-- sent for (guard.alerts_for_delivery reads what the digest shows).
CREATE OR REPLACE FUNCTION guard.claim_alert_digest(
    delivery_channel text,
    worker text,
    period_hours integer,
    max_rows integer,
    lease_seconds double precision
)
RETURNS TABLE (alert_id bigint, attempts integer, period_end timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
DECLARE
    period_seconds constant bigint := claim_alert_digest.period_hours::bigint * 3600;
    ends timestamptz;
BEGIN
    IF claim_alert_digest.period_hours IS NULL OR claim_alert_digest.period_hours < 1 THEN
        RAISE EXCEPTION 'a digest period is a positive number of hours, not %',
        claim_alert_digest.period_hours
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ends := to_timestamp(floor(extract(epoch FROM now()) / period_seconds) * period_seconds);
    RETURN QUERY
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_alert_digest.worker,
            claimed_until = now() + make_interval(secs => claim_alert_digest.lease_seconds)
        WHERE
            d.channel = claim_alert_digest.delivery_channel
            AND d.alert_id = ANY(ARRAY(
                SELECT q.alert_id
                FROM guard.alert_deliveries AS q
                WHERE
                    q.channel = claim_alert_digest.delivery_channel
                    AND q.status = 'pending'
                    AND q.next_attempt_at <= now()
                    AND (q.claimed_until IS NULL OR q.claimed_until < now())
                    AND NOT EXISTS (
                        SELECT
                        FROM guard.alerts AS o
                        WHERE o.id = q.alert_id AND o.first_seen_at >= ends
                    )
                ORDER BY q.next_attempt_at, q.alert_id
                LIMIT claim_alert_digest.max_rows
                FOR UPDATE SKIP LOCKED
            ))
        RETURNING d.alert_id, d.attempts
    )

    SELECT c.alert_id, c.attempts, ends FROM claimed AS c ORDER BY c.alert_id;
END;
$$;
