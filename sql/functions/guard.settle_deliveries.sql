-- Record a channel's deliveries of one kind as sent (error NULL) or as failed for good (a
-- subject that cannot be rendered: retrying cannot help), whoever holds the claim: the send
-- happened. Only pending rows change, so a second call marks nothing (sent once). Returns the
-- rows marked.
CREATE OR REPLACE FUNCTION guard.settle_deliveries(
    delivery_kind text, delivery_channel text, subjects bigint[], error text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.deliveries AS d
    SET
        status = CASE WHEN settle_deliveries.error IS NULL THEN 'sent' ELSE 'failed' END,
        sent_at = CASE WHEN settle_deliveries.error IS NULL THEN now() END,
        last_error = settle_deliveries.error,
        claimed_by = NULL,
        claimed_until = NULL
    WHERE
        d.kind = settle_deliveries.delivery_kind
        AND d.channel = settle_deliveries.delivery_channel
        AND d.subject = ANY(settle_deliveries.subjects)
        AND d.status = 'pending';
    GET DIAGNOSTICS marked = ROW_COUNT;
    RETURN marked;
END;
$$;
