-- I3, I4: the calls among call_ids whose booking flags differ from what their active appointments
-- say, with the flags they have (old_*) and the flags they should have (new_*). The one
-- definition of the derived flags: guard.refresh_call_flags corrects, audits or counts with it.
--   lost_from  calls that just lost an active appointment: with none left, a booked outcome
--              becomes appointment_cancelled and the booking is no longer confirmed
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked
-- outcome without an appointment is left alone: it is legitimate during the grace period
-- (detection's job).
-- One SELECT, LANGUAGE sql, STABLE, no SET clause, not SECURITY DEFINER: the planner inlines it
-- into the statement that calls it, so it costs what the same SQL written in place costs.
-- The calls are a join with unnest(), not `id = ANY (call_ids)` per row: in a cached generic
-- plan the array is a parameter, searched linearly for every row (bench/triggers.py
-- --generic-plans: a 10 000-row delete took 2.4x as long).
CREATE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost_from bigint[])
RETURNS TABLE (
    id bigint,
    company_id bigint,
    old_made boolean,
    old_link_status text,
    old_linked_at timestamptz,
    old_outcome text,
    old_failed boolean,
    old_confirmed boolean,
    new_made boolean,
    new_link_status text,
    new_linked_at timestamptz,
    new_outcome text,
    new_failed boolean,
    new_confirmed boolean
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        d.id,
        d.company_id,
        d.appointment_made,
        d.appointment_link_status,
        d.appointment_linked_at,
        d.session_outcome,
        d.booking_failed,
        d.booking_confirmed,
        d.has_active,
        d.new_link_status,
        d.new_linked_at,
        d.new_outcome,
        d.new_failed,
        d.new_confirmed
    FROM (
        SELECT
            s.*,
            CASE
                WHEN s.has_active THEN 'linked'
                WHEN s.appointment_link_status IS NULL THEN NULL
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(s.appointment_linked_at, pg_catalog.now())
                ELSE s.appointment_linked_at
            END AS new_linked_at,
            CASE
                WHEN s.has_active THEN 'appointment_booked'
                WHEN s.lost_one AND s.session_outcome = 'appointment_booked'
                    THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (s.lost_one AND NOT s.has_active) AS new_confirmed
        FROM (
            SELECT
                c.id,
                c.company_id,
                c.appointment_made,
                c.appointment_link_status,
                c.appointment_linked_at,
                c.session_outcome,
                c.booking_failed,
                c.booking_confirmed,
                t.lost_one,
                EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = c.id
                        AND a.company_id = c.company_id
                        AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
                ) AS has_active
            FROM (
                SELECT u.id, pg_catalog.bool_or(u.lost) AS lost_one
                FROM (
                    SELECT x.id, FALSE AS lost FROM pg_catalog.unnest(call_ids) AS x (id)
                    UNION ALL
                    SELECT x.id, TRUE AS lost FROM pg_catalog.unnest(lost_from) AS x (id)
                ) AS u
                GROUP BY u.id
                HAVING NOT pg_catalog.bool_and(u.lost)  -- lost_from is a subset of call_ids
            ) AS t
            INNER JOIN public.calls AS c ON t.id = c.id
        ) AS s
    ) AS d
    WHERE (
        d.appointment_made, d.appointment_link_status, d.appointment_linked_at,
        d.session_outcome, d.booking_failed, d.booking_confirmed
    ) IS DISTINCT FROM (
        d.has_active, d.new_link_status, d.new_linked_at,
        d.new_outcome, d.new_failed, d.new_confirmed
    );
$$;
