-- What a review notice may show, for the items a dispatcher claimed (guard.claim_deliveries,
-- kind review_notice): the item's reason, priority, company, call and appointment ids, and its
-- details' top-level scalar values (strings cut to 200 characters, at most 64 keys: free text of
-- any size never reaches `guard watch` whole; it shows a whitelist). An item deleted since it
-- was queued comes back with its id only.
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
        coalesce((
            SELECT jsonb_object_agg(e.key, e.value)
            FROM (
                SELECT
                    f.key,
                    CASE
                        WHEN jsonb_typeof(f.value) = 'string'
                            THEN to_jsonb(left(f.value #>> '{}', 200))
                        ELSE f.value
                    END AS value
                FROM jsonb_each(
                    CASE WHEN jsonb_typeof(r.details) = 'object' THEN r.details ELSE '{}' END
                ) AS f
                WHERE
                    jsonb_typeof(f.value) IN ('string', 'number', 'boolean', 'null')
                    AND length(f.key) <= 64
                ORDER BY f.key
                LIMIT 64
            ) AS e
        ), '{}'::jsonb)
    FROM unnest(review_notice_items.item_ids) AS c (review_item_id)
    LEFT JOIN guard.review_items AS r ON c.review_item_id = r.id
    ORDER BY c.review_item_id;
END;
$$;
