-- Hand due deliveries of one channel to one dispatcher for a lease: the one claim of alert
-- deliveries, sent one message each or, with digest_hours, in a digest. SKIP LOCKED: two
-- dispatchers claiming at once never get the same row (nor one alert in two digests); the lease
-- (claimed_until) keeps the row theirs after this transaction commits, and lets it go again if
-- that dispatcher dies or its send failed.
-- A digest channel's due rows are those of alerts opened before the start of the current digest
-- period (periods of digest_hours, counted from 1970-01-01 00:00 UTC: 24 ends them at midnight
-- UTC), and of alerts deleted since; an alert opened in the current period waits for the next
-- digest. period_end: the end of the period they are sent for (NULL without digest_hours).
-- Reads only what it claims: the due index's order is the ORDER BY (next_attempt_at ties, e.g.
-- a backlog enqueued by one statement, are not sorted in full), and the rows are updated by
-- primary key (= ANY of the claimed ids), so a backlog on a dead channel costs a wake-up nothing.
-- Returns the claimed alerts with their attempts so far, oldest first; what a message shows is
-- read by guard.alerts_for_delivery.
CREATE OR REPLACE FUNCTION guard.claim_alert_deliveries(
    delivery_channel text,
    worker text,
    max_rows integer,
    lease_seconds double precision,
    digest_hours integer DEFAULT NULL
)
RETURNS TABLE (alert_id bigint, attempts integer, period_end timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
DECLARE
    ends timestamptz;
BEGIN
    IF claim_alert_deliveries.digest_hours < 1 THEN
        RAISE EXCEPTION 'a digest period is a positive number of hours, not %',
        claim_alert_deliveries.digest_hours
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ends := to_timestamp(
        floor(extract(epoch FROM now()) / (claim_alert_deliveries.digest_hours::bigint * 3600))
        * (claim_alert_deliveries.digest_hours::bigint * 3600)
    );
    RETURN QUERY
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_alert_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_alert_deliveries.lease_seconds)
        WHERE
            d.channel = claim_alert_deliveries.delivery_channel
            AND d.alert_id = ANY(ARRAY(
                SELECT q.alert_id
                FROM guard.alert_deliveries AS q
                WHERE
                    q.channel = claim_alert_deliveries.delivery_channel
                    AND q.status = 'pending'
                    AND q.next_attempt_at <= now()
                    AND (q.claimed_until IS NULL OR q.claimed_until < now())
                    AND (
                        ends IS NULL
                        OR NOT EXISTS (
                            SELECT
                            FROM guard.alerts AS o
                            WHERE o.id = q.alert_id AND o.first_seen_at >= ends
                        )
                    )
                ORDER BY q.next_attempt_at, q.alert_id
                LIMIT claim_alert_deliveries.max_rows
                FOR UPDATE SKIP LOCKED
            ))
        RETURNING d.alert_id, d.attempts
    )

    SELECT c.alert_id, c.attempts, ends FROM claimed AS c ORDER BY c.alert_id;
END;
$$;
