-- Queue "the alert resolved" notices for `guard watch --resolved CHANNEL` (guard.deliveries,
-- kind alert_resolved, subject the alert's id): one per delivered alert on those channels whose
-- alert has resolved since it was delivered. Each delivered row is looked at once
-- (resolution_queued_at), so the read is the partial index of the rows not looked at yet
-- (deliveries_resolution_due_idx), not the history; an alert that had resolved when it was
-- delivered gets no notice (that message said so). Concurrent dispatchers: the second waits for
-- the first's rows and finds them looked at. Returns the notices created.
CREATE OR REPLACE FUNCTION guard.enqueue_resolved_notices(channels text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    added integer;
BEGIN
    WITH looked AS (
        UPDATE guard.deliveries AS d
        SET resolution_queued_at = now()
        FROM guard.alerts AS a
        WHERE
            d.kind = 'alert'
            AND a.id = d.subject
            AND d.channel = ANY(enqueue_resolved_notices.channels)
            AND d.status = 'delivered'
            AND d.resolution_queued_at IS NULL
            AND a.status = 'resolved'
        RETURNING d.subject, d.channel, a.resolved_at > d.delivered_at AS announced
    )

    INSERT INTO guard.deliveries (kind, subject, channel)
    SELECT 'alert_resolved', l.subject, l.channel
    FROM looked AS l
    WHERE l.announced
    ON CONFLICT (kind, subject, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;
