-- Hand one channel's due deliveries of one kind to one dispatcher for a lease: SKIP LOCKED and
-- the lease (claimed_by, claimed_until), so two dispatchers never send one twice; a claim whose
-- dispatcher died (or gave it back) is due again when its lease ends (a lease ending exactly now
-- still runs), one whose send failed when its next attempt is (guard.settle_deliveries).
-- Reads only what it claims: the due index's order (deliveries_due_idx: next_attempt_at, then
-- the subject for a backlog queued by one statement) is the ORDER BY, and the rows are updated
-- by primary key, so a backlog on a dead channel costs a wake-up nothing.
-- digest_hours (alerts only): the alerts for a digest of that period, those opened before the
-- start of the current period (periods of digest_hours, counted from 1970-01-01 00:00 UTC: 24
-- ends them at midnight UTC) and those deleted since; an alert opened in the current period
-- waits for the next digest. period_end: the end of the period they are sent for (NULL without
-- digest_hours). Returns the subjects with their attempts so far, oldest first: each kind reads
-- what its message shows itself.
CREATE OR REPLACE FUNCTION guard.claim_deliveries(
    delivery_kind text,
    delivery_channel text,
    worker text,
    max_rows integer,
    lease_seconds double precision,
    digest_hours integer DEFAULT NULL
)
RETURNS TABLE (subject bigint, attempts integer, period_end timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
DECLARE
    ends timestamptz;
BEGIN
    IF
        claim_deliveries.digest_hours < 1
        OR claim_deliveries.digest_hours IS NOT NULL AND claim_deliveries.delivery_kind <> 'alert'
    THEN
        RAISE EXCEPTION 'a digest is of alerts, over a positive number of hours, not % of %',
        claim_deliveries.digest_hours, claim_deliveries.delivery_kind
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ends := to_timestamp(
        floor(extract(epoch FROM now()) / (claim_deliveries.digest_hours::bigint * 3600))
        * (claim_deliveries.digest_hours::bigint * 3600)
    );
    RETURN QUERY
    WITH claimed AS (
        UPDATE guard.deliveries AS d
        SET
            claimed_by = claim_deliveries.worker,
            claimed_until = now() + make_interval(secs => claim_deliveries.lease_seconds)
        WHERE
            d.kind = claim_deliveries.delivery_kind
            AND d.channel = claim_deliveries.delivery_channel
            AND d.subject = ANY(ARRAY(
                SELECT q.subject
                FROM guard.deliveries AS q
                WHERE
                    q.kind = claim_deliveries.delivery_kind
                    AND q.channel = claim_deliveries.delivery_channel
                    AND q.status = 'pending'
                    AND q.next_attempt_at <= now()
                    AND (q.claimed_until IS NULL OR q.claimed_until < now())
                    AND (
                        ends IS NULL
                        OR NOT EXISTS (
                            SELECT
                            FROM guard.alerts AS o
                            WHERE o.id = q.subject AND o.first_seen_at >= ends
                        )
                    )
                ORDER BY q.next_attempt_at, q.subject
                LIMIT claim_deliveries.max_rows
                FOR UPDATE SKIP LOCKED
            ))
        RETURNING d.subject, d.attempts
    )

    SELECT c.subject, c.attempts, ends FROM claimed AS c ORDER BY c.subject;
END;
$$;
