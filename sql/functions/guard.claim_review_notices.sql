-- Hand one channel's pending review notices to one dispatcher for a lease: SKIP LOCKED and the
-- lease (claimed_by, claimed_until) as in guard.claim_alert_deliveries, so two dispatchers never
-- send one notice; a claim whose send failed, or whose dispatcher died, is due again when its
-- lease ends. Returns what a notice may show: the item's reason, priority, company, call and
-- appointment ids, and its details' top-level scalar values (strings cut to 200 characters, at
-- most 64 keys: free text of any size never reaches `guard watch` whole; it shows a whitelist).
CREATE OR REPLACE FUNCTION guard.claim_review_notices(
    notice_channel text, worker text, max_rows integer, lease_seconds double precision
)
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
    WITH claimed AS (
        UPDATE guard.review_notices AS n
        SET
            claimed_by = claim_review_notices.worker,
            claimed_until = now() + make_interval(secs => claim_review_notices.lease_seconds)
        WHERE (n.review_item_id, n.channel) IN (
            SELECT q.review_item_id, q.channel
            FROM guard.review_notices AS q
            WHERE
                q.channel = claim_review_notices.notice_channel
                AND q.status = 'pending'
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY q.review_item_id
            LIMIT claim_review_notices.max_rows
            FOR UPDATE SKIP LOCKED
        )
        RETURNING n.review_item_id
    )

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
    FROM claimed AS c
    LEFT JOIN guard.review_items AS r ON c.review_item_id = r.id
    ORDER BY c.review_item_id;
END;
$$;
