-- A rule enforced by constraints is at stage enforce once all of them are validated, and at
-- stage correct while any is still NOT VALID. Rules without constraints keep their stage.
CREATE OR REPLACE FUNCTION guard.refresh_rule_stages()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    UPDATE guard.rules AS r
    SET stage = CASE WHEN v.all_valid THEN 'enforce' ELSE 'correct' END
    FROM (
        SELECT
            rr.id,
            bool_and(coalesce(k.convalidated, FALSE)) AS all_valid
        FROM guard.rules AS rr
        CROSS JOIN LATERAL unnest(rr.constraint_names) AS cn (name)
        LEFT JOIN pg_catalog.pg_constraint AS k
            ON
                k.conname = cn.name
                AND k.conrelid IN ('public.calls'::regclass, 'public.appointments'::regclass)
        GROUP BY rr.id
    ) AS v
    WHERE r.id = v.id AND r.stage IS DISTINCT FROM CASE WHEN v.all_valid THEN 'enforce' ELSE 'correct' END;
$$;
