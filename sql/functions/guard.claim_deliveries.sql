-- Hand one channel's pending deliveries of one kind to one dispatcher for a lease: SKIP LOCKED
-- and the lease (claimed_by, claimed_until), so two dispatchers never send one twice; a claim
-- whose send failed, or whose dispatcher died, is due again when its lease ends (a lease ending
-- exactly now still runs). Reads the kind's pending rows on the channel oldest subject first
-- (deliveries_pending_idx) and stops after the batch. Returns the subjects, oldest first: each
-- kind reads what its message shows itself.
CREATE OR REPLACE FUNCTION guard.claim_deliveries(
    delivery_kind text,
    delivery_channel text,
    worker text,
    max_rows integer,
    lease_seconds double precision
)
RETURNS TABLE (subject bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
BEGIN
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
                    AND (q.claimed_until IS NULL OR q.claimed_until < now())
                ORDER BY q.subject
                LIMIT claim_deliveries.max_rows
                FOR UPDATE SKIP LOCKED
            ))
        RETURNING d.subject
    )

    SELECT c.subject FROM claimed AS c ORDER BY c.subject;
END;
$$;
