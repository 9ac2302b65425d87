-- Record that a channel was told these alerts resolved (whoever holds the claim: the send
-- happened). Returns the rows newly marked; a second call marks nothing (announced once).
CREATE OR REPLACE FUNCTION guard.complete_resolved_deliveries(delivery_channel text, alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET resolved_sent_at = now(), claimed_by = NULL, claimed_until = NULL
    WHERE
        d.channel = complete_resolved_deliveries.delivery_channel
        AND d.alert_id = ANY(complete_resolved_deliveries.alert_ids)
        AND d.status = 'delivered'
        AND d.resolved_sent_at IS NULL;
    GET DIAGNOSTICS marked = ROW_COUNT;
    RETURN marked;
END;
$$;
