-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: recompute the calls on both sides of
-- every appointment whose call, company or activeness (status, soft delete) changed.
-- The changed rows are found by grouping both transition tables together on what matters (the
-- old version counts -1, the new one +1): an unchanged row's two versions cancel out, a changed
-- row leaves its old side (-1) and its new side (+1). One scan of each table and one hash
-- aggregate: cheaper than the two EXCEPTs this replaced, and never a join of the transition
-- tables, whose plan, cached from a one-row firing, made a big statement quadratic.
CREATE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One statement finds the calls and derives their flags: a one-row update pays for one
    -- executor run here, not two.
    PERFORM guard.refresh_call_flags(touched.calls, lost_from => touched.lost)
    FROM (
        SELECT
            array_agg(DISTINCT v.call_id) AS calls,
            coalesce(
                array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}'
            ) AS lost
        FROM (
            SELECT u.call_id, u.active, sum(u.side) AS side
            FROM (
                SELECT
                    o.id,
                    o.call_id,
                    o.company_id,
                    (o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled') AS active,
                    -1 AS side
                FROM old_rows AS o
                UNION ALL
                SELECT
                    n.id,
                    n.call_id,
                    n.company_id,
                    (n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled') AS active,
                    1 AS side
                FROM new_rows AS n
            ) AS u
            GROUP BY u.id, u.call_id, u.company_id, u.active
            HAVING sum(u.side) <> 0
        ) AS v
        WHERE v.call_id IS NOT NULL
    ) AS touched
    WHERE touched.calls IS NOT NULL;
    RETURN NULL;
END;
$$;
