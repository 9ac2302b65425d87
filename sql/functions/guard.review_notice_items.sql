-- What a review notice may show, for the items a dispatcher claimed (guard.claim_deliveries,
-- kind review_notice): the item's reason, priority, company, call and appointment ids, and its
-- details' guard.json_scalars (free text of any size never reaches `guard watch` whole; it shows
-- a whitelist). An item deleted since it was queued comes back with its id only.
CREATE OR REPLACE FUNCTION guard.review_notice_items(item_ids bigint[])
RETURNS TABLE (
    review_item_id bigint,
    reason text,
    priority smallint,
    item_status text,
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    created_at timestamptz,
    details jsonb
)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT
        c.review_item_id,
        r.reason,
        r.priority,
        r.status,
        r.company_id,
        r.call_id,
        r.appointment_id,
        r.created_at,
        coalesce(guard.json_scalars(r.details), '{}'::jsonb)
    FROM unnest(review_notice_items.item_ids) AS c (review_item_id)
    LEFT JOIN guard.review_items AS r ON c.review_item_id = r.id
    ORDER BY c.review_item_id;
END;
$$;
