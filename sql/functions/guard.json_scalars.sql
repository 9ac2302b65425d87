-- The part of a JSON document safe to show whatever its size: its top-level scalar values
-- (strings cut to 200 characters), at most 64 keys, the first by name; keys over 64 characters
-- and a key "details_truncated" left out. Not an object, or no scalar: {}. NULL stays NULL.
-- guard.json_excerpt cuts a large document to it; a review notice always shows it.
CREATE OR REPLACE FUNCTION guard.json_scalars(document jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT coalesce((
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
                    WHEN jsonb_typeof(json_scalars.document) = 'object'
                        THEN json_scalars.document
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
    WHERE json_scalars.document IS NOT NULL;
$$;
