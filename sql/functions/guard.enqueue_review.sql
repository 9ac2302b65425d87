-- Queue a problem for a person: one open item per call and reason (or, for a problem without a
-- call, per appointment and reason). A duplicate is not an error: the open item stays and its
-- id is returned. Priority follows from the reason (a generated column).
CREATE OR REPLACE FUNCTION guard.enqueue_review(
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    reason text,
    details jsonb DEFAULT '{}'
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    item_id bigint;
BEGIN
    INSERT INTO guard.review_items (company_id, call_id, appointment_id, reason, details)
    VALUES (
        enqueue_review.company_id, enqueue_review.call_id, enqueue_review.appointment_id,
        enqueue_review.reason, enqueue_review.details
    )
    ON CONFLICT DO NOTHING
    RETURNING id INTO item_id;
    IF item_id IS NULL THEN
        SELECT r.id INTO item_id
        FROM guard.review_items AS r
        WHERE
            r.status IN ('open', 'claimed')
            AND r.reason = enqueue_review.reason
            AND (
                r.call_id = enqueue_review.call_id
                OR (r.call_id IS NULL AND r.appointment_id = enqueue_review.appointment_id)
            );
    END IF;
    RETURN item_id;
END;
$$;
