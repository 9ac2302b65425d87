-- Give back the claims a dispatcher holds on a channel but did not send (the rest of a batch,
-- graceful shutdown): the rows become due again at once for any dispatcher. Returns the rows
-- released. Found through the index of claimed rows (deliveries_claimed_idx), not among the
-- channel's pending rows.
CREATE OR REPLACE FUNCTION guard.release_deliveries(delivery_channel text, worker text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    released integer;
BEGIN
    UPDATE guard.deliveries AS d
    SET claimed_by = NULL, claimed_until = NULL
    WHERE
        d.channel = release_deliveries.delivery_channel
        AND d.claimed_until IS NOT NULL
        AND d.claimed_by = release_deliveries.worker
        AND d.status = 'pending';
    GET DIAGNOSTICS released = ROW_COUNT;
    RETURN released;
END;
$$;
