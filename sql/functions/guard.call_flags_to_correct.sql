-- I3, I4: the calls among call_ids whose booking flags differ from what their active appointments
-- say, with the flags they have (old_*) and the flags they should have (new_*). The one
-- definition of the derived flags: every statement that derives, corrects or checks them reads it.
--   lost  the calls just lost an active appointment (an appointment trigger says so): with none
--         left, a booked outcome becomes appointment_cancelled and the booking is no longer
--         confirmed. Deriving a call with lost = FALSE after it was derived with lost = TRUE
--         changes nothing, so a caller may pass a call in both sets, the lost set first.
--   row_id the version of the call row that was read, for the caller's UPDATE to join on (a TID
--         scan instead of a second index lookup of the same row; the caller holds the row lock).
-- Without an active appointment the link status stays NULL (never linked) or `creation_failed` (a
-- booking that was rolled back: the calendar never made it); any other value becomes `unlinked`.
-- Which appointment counts as the call's active one: guard.active_appointment_for_call. A booked
-- outcome without an appointment is left alone: it is legitimate during the grace period
-- (detection's job).
-- One SELECT, LANGUAGE sql, STABLE, no SET clause, not SECURITY DEFINER: the planner inlines it
-- into the statement that calls it, so it costs what the same SQL written in place costs.
-- OFFSET 0 keeps the inner query a subquery: without it the planner flattens it and copies the
-- EXISTS into every expression that reads has_active (14 copies, each one initialised for every
-- statement and probed per row: most of a one-row cancel's cost, bench/instructions.py).
-- `c.id = ANY (call_ids)` is an index condition (the array is sorted once and each id looked up),
-- not a filter searched per row.
CREATE OR REPLACE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost boolean)
RETURNS TABLE (
    row_id tid,
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
        d.ctid,
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
                -- never linked, or a booking whose creation failed (guard.rollback_booking): kept
                WHEN s.appointment_link_status IS NULL OR s.appointment_link_status = 'creation_failed'
                    THEN s.appointment_link_status
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(
                    s.appointment_linked_at,
                    guard.to_app_time(pg_catalog.now(), s.appointment_linked_at, guard.app_time_zone())
                )
                ELSE s.appointment_linked_at
            END AS new_linked_at,
            CASE
                WHEN s.has_active THEN 'appointment_booked'
                WHEN lost AND s.session_outcome = 'appointment_booked' THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (lost AND NOT s.has_active) AS new_confirmed
        FROM (
            SELECT
                c.ctid,
                c.id,
                c.company_id,
                c.appointment_made,
                c.appointment_link_status,
                c.appointment_linked_at,
                c.session_outcome,
                c.booking_failed,
                c.booking_confirmed,
                h.has_active
            FROM public.calls AS c
            CROSS JOIN LATERAL guard.active_appointment_for_call(c.id, c.company_id) AS h
            WHERE c.id = ANY (call_ids)
            OFFSET 0
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
