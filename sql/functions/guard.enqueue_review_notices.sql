-- Queue "review item opened" notices for `guard watch --review-notices`: subscribe the channels
-- to the priorities (first time only: `since` = now, so the queue that was there before is not
-- announced), then queue a notice (guard.deliveries, kind review_notice) per channel for every
-- open item of a subscribed priority opened since the subscription. Reads the open queue only
-- (review_items_queue_idx), not the history; idempotent (ON CONFLICT), so any number of
-- dispatchers may run it. An item claimed or closed before a dispatcher saw it is not
-- announced: somebody already has it. Returns the notices created.
CREATE OR REPLACE FUNCTION guard.enqueue_review_notices(channels text[], priorities smallint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    added integer;
BEGIN
    INSERT INTO guard.review_notice_subscriptions (channel, priority)
    SELECT c.channel, p.priority
    FROM unnest(enqueue_review_notices.channels) AS c (channel)
    CROSS JOIN unnest(enqueue_review_notices.priorities) AS p (priority)
    ON CONFLICT (channel, priority) DO NOTHING;

    INSERT INTO guard.deliveries (kind, subject, channel)
    SELECT 'review_notice', r.id, s.channel
    FROM guard.review_notice_subscriptions AS s
    INNER JOIN guard.review_items AS r
        ON
            s.priority = r.priority
            AND r.status = 'open'
            AND r.created_at >= s.since
    WHERE
        s.channel = ANY(enqueue_review_notices.channels)
        AND s.priority = ANY(enqueue_review_notices.priorities)
    ON CONFLICT (kind, subject, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;
