-- A JSON document cut for display: what `guard alerts show`, `guard review list/show/claim` print
-- and what a claimed alert delivery carries (guard.alerts_for_delivery). Up to 16384 bytes of
-- its text the document as it is; a larger one (a rollback context of megabytes) as its
-- guard.json_scalars plus "details_truncated": the full size and `read_more`, where to read the
-- rest. Its text is measured once (its stored size says nothing of its text). NULL stays NULL.
CREATE OR REPLACE FUNCTION guard.json_excerpt(document jsonb, read_more text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT
        CASE
            WHEN s.bytes <= 16384 THEN json_excerpt.document
            ELSE
                guard.json_scalars(json_excerpt.document)
                || jsonb_build_object(
                    'details_truncated',
                    jsonb_build_object('bytes', s.bytes, 'read_more', json_excerpt.read_more)
                )
        END
    FROM (SELECT octet_length(json_excerpt.document::text) AS bytes) AS s
    WHERE s.bytes IS NOT NULL;
$$;
