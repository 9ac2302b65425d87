-- Queue a pending delivery of each subject of one kind on each channel: the source of a kind
-- whose subjects the dispatcher names itself. Idempotent (ON CONFLICT), so any number of
-- dispatchers may run it. Returns the deliveries created.
CREATE OR REPLACE FUNCTION guard.enqueue_deliveries(
    delivery_kind text, channels text[], subjects bigint[]
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    added integer;
BEGIN
    INSERT INTO guard.deliveries (kind, subject, channel)
    SELECT enqueue_deliveries.delivery_kind, s.subject, c.channel
    FROM unnest(enqueue_deliveries.subjects) AS s (subject)
    CROSS JOIN unnest(enqueue_deliveries.channels) AS c (channel)
    ON CONFLICT (kind, subject, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;
