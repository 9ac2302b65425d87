-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: the calls on both sides of every
-- appointment whose call, company or activeness (status, soft delete) changed get their flags
-- derived again.
-- The changed rows are found by grouping both transition tables together on what matters (the
-- old version counts -1, the new one +1): an unchanged row's two versions cancel out, a changed
-- row leaves its old side (-1) and its new side (+1). One scan of each table and one hash
-- aggregate, never a join of the transition tables, whose plan, cached from a one-row firing,
-- made a big statement quadratic. A call with an active old side lost an appointment; every
-- touched call is derived (a call may gain one), the lost ones first: deriving a call again
-- without the lost mark changes nothing (guard.call_flags_to_correct).
-- Then the lock and the derivation of guard.sync_flags_after_appointment_delete (see there why
-- in two statements, in this order, with invoker rights).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    touched bigint[];
    lost bigint[];
BEGIN
    SELECT
        coalesce(pg_catalog.array_agg(DISTINCT v.call_id), '{}'),
        coalesce(
            pg_catalog.array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}'
        )
    INTO touched, lost
    FROM (
        SELECT u.call_id, u.active, pg_catalog.sum(u.side) AS side
        FROM (
            SELECT
                o.id,
                o.call_id,
                o.company_id,
                guard.is_active_appointment(o.status, o.deleted_at) AS active,
                -1 AS side
            FROM old_rows AS o
            UNION ALL
            SELECT
                n.id,
                n.call_id,
                n.company_id,
                guard.is_active_appointment(n.status, n.deleted_at) AS active,
                1 AS side
            FROM new_rows AS n
        ) AS u
        GROUP BY u.id, u.call_id, u.company_id, u.active
        HAVING pg_catalog.sum(u.side) <> 0
    ) AS v
    WHERE v.call_id IS NOT NULL;
    IF pg_catalog.cardinality(touched) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM FROM public.calls AS c WHERE c.id = ANY (touched) ORDER BY c.id FOR NO KEY UPDATE;
    IF pg_catalog.cardinality(lost) > 0 THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE pg_catalog.now()
            END
        FROM guard.call_flags_to_correct(lost, TRUE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    -- lost is a subset of touched: equal sizes mean nothing is left to derive.
    IF pg_catalog.cardinality(touched) > pg_catalog.cardinality(lost) THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE pg_catalog.now()
            END
        FROM guard.call_flags_to_correct(touched, FALSE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    RETURN NULL;
END;
$$;
