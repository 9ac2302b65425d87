-- Record a channel's review notices as sent (error NULL) or as failed for good (an item that
-- cannot be rendered: retrying cannot help), whoever holds the claim: the send happened. Only
-- pending notices change, so a second call marks nothing (sent once). Returns the rows marked.
CREATE OR REPLACE FUNCTION guard.complete_review_notices(
    notice_channel text, item_ids bigint[], error text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.review_notices AS n
    SET
        status = CASE WHEN complete_review_notices.error IS NULL THEN 'sent' ELSE 'failed' END,
        sent_at = CASE WHEN complete_review_notices.error IS NULL THEN now() END,
        last_error = complete_review_notices.error,
        claimed_by = NULL,
        claimed_until = NULL
    WHERE
        n.channel = complete_review_notices.notice_channel
        AND n.review_item_id = ANY(complete_review_notices.item_ids)
        AND n.status = 'pending';
    GET DIAGNOSTICS marked = ROW_COUNT;
    RETURN marked;
END;
$$;
