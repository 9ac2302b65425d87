-- What of an alert's details travels with a claimed delivery. Details up to 16 kB as they are;
-- larger ones (a rollback context of megabytes) as their top-level scalar values, strings cut to
-- 200 characters, at most 64 keys, plus "details_truncated": the full size and the query that
-- reads the rest. So a claimed batch is bounded in bytes as well as rows, and no multi-megabyte
-- document ever reaches `guard watch` whole (it renders only a whitelist of scalar keys anyway).
CREATE OR REPLACE FUNCTION guard.alert_details_excerpt(alert_id bigint, details jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT
        CASE
            WHEN s.bytes <= 16384 THEN alert_details_excerpt.details
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
                                WHEN jsonb_typeof(alert_details_excerpt.details) = 'object'
                                    THEN alert_details_excerpt.details
                                ELSE '{}'::jsonb
                            END
                        ) AS f
                        WHERE
                            jsonb_typeof(f.value) IN ('string', 'number', 'boolean', 'null')
                            AND length(f.key) <= 64
                        ORDER BY f.key
                        LIMIT 64
                    ) AS e
                ), '{}'::jsonb)
                || jsonb_build_object(
                    'details_truncated',
                    jsonb_build_object(
                        'bytes', s.bytes,
                        'read_more', format(
                            'SELECT details FROM guard.alerts WHERE id = %s',
                            alert_details_excerpt.alert_id
                        )
                    )
                )
        END
    FROM (SELECT octet_length(alert_details_excerpt.details::text) AS bytes) AS s;
$$;
