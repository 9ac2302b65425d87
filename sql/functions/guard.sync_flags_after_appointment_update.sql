-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: recompute the calls on both sides of
-- every appointment whose call, company or activeness (status, soft delete) changed.
-- The changed rows are found with EXCEPT over the two transition tables, never with a join of
-- them: a cached nested-loop plan from a one-row firing made such a join quadratic (NOTES.md).
CREATE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    touched_calls bigint[];
    lost_calls bigint[];
BEGIN
    WITH before_state AS (
        SELECT
            o.id,
            o.call_id,
            o.company_id,
            (o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled') AS active
        FROM old_rows AS o
    ),

    after_state AS (
        SELECT
            n.id,
            n.call_id,
            n.company_id,
            (n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled') AS active
        FROM new_rows AS n
    ),

    gone AS (
        SELECT * FROM before_state
        EXCEPT
        SELECT * FROM after_state
    ),

    came AS (
        SELECT * FROM after_state
        EXCEPT
        SELECT * FROM before_state
    ),

    moved AS (
        SELECT g.call_id, g.active AS lost_active FROM gone AS g
        UNION ALL
        SELECT c.call_id, FALSE FROM came AS c
    )

    SELECT
        array_agg(DISTINCT m.call_id),
        coalesce(array_agg(DISTINCT m.call_id) FILTER (WHERE m.lost_active), '{}')
    INTO touched_calls, lost_calls
    FROM moved AS m
    WHERE m.call_id IS NOT NULL;

    IF touched_calls IS NOT NULL THEN
        PERFORM guard.refresh_call_flags(touched_calls, lost_from => lost_calls);
    END IF;
    RETURN NULL;
END;
$$;
