-- Hand due deliveries of one channel to one dispatcher for a lease. SKIP LOCKED: two
-- dispatchers claiming at once never get the same row; the lease (claimed_until) keeps the row
-- theirs after this transaction commits, and lets it go again if that dispatcher dies.
-- Reads only what it claims: the due index's order is the ORDER BY (next_attempt_at ties, e.g.
-- a backlog enqueued by one statement, are not sorted in full), and the rows are updated by
-- primary key (= ANY of the claimed ids), so a backlog on a dead channel costs a wake-up nothing.
-- Returns the claimed alerts with their attempts so far, oldest first; what a message shows is
-- read by guard.alerts_for_delivery.
CREATE OR REPLACE FUNCTION guard.claim_alert_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (alert_id bigint, attempts integer)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
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
            ORDER BY q.next_attempt_at, q.alert_id
            LIMIT claim_alert_deliveries.max_rows
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING d.alert_id, d.attempts
    )
    SELECT c.alert_id, c.attempts FROM claimed AS c ORDER BY c.alert_id;
$$;
