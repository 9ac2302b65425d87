-- A JSON document cut for display: what `guard alerts show`, `guard review list/show/claim` print
-- and what a claimed alert delivery carries (guard.alerts_for_delivery). Up to 16384 bytes of
-- its text the document as it is; a larger one (a rollback context of megabytes) as its
-- top-level scalar values, strings cut to 200 characters, at most 64 keys (the first by name,
-- keys over 64 characters and a stored "details_truncated" left out), plus "details_truncated":
-- the full size and `read_more`, where to read the rest. Its text is measured once (its stored
-- size says nothing of its text). NULL stays NULL.
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
                            CASE
                                WHEN jsonb_typeof(json_excerpt.document) = 'object'
                                    THEN json_excerpt.document
                                ELSE '{}'::jsonb
                            END
                        ) AS f
                        WHERE
                            jsonb_typeof(f.value) IN ('string', 'number', 'boolean', 'null')
                            AND length(f.key) <= 64
                            AND f.key <> 'details_truncated'
                        ORDER BY f.key
                        LIMIT 64
                    ) AS e
                ), '{}'::jsonb)
                || jsonb_build_object(
                    'details_truncated',
                    jsonb_build_object('bytes', s.bytes, 'read_more', json_excerpt.read_more)
                )
        END
    FROM (SELECT octet_length(json_excerpt.document::text) AS bytes) AS s
    WHERE s.bytes IS NOT NULL;
$$;
