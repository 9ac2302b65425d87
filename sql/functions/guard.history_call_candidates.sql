-- `guard check --all`'s one read of the calls for three checks that each read every call:
-- booked_without_appointment, flags_contradict_appointments and call_without_direction. One
-- scan of the calls in [since, until), joined once to the active appointments of the same call
-- and company, returns each check's candidate calls (entity ids) for guard.run_checks_between,
-- which reads only those rows of the check's view, by key: the view stays the judge, so a
-- candidate it does not return is no finding. Each candidate set holds every call its view can
-- return in the range (booked_without_appointment's without its grace period, which the view
-- applies): three scans of a million calls, and two of the appointments, cost half again as much
-- (bench/full_pass.py). A change to one of these views that lets it return more calls must be
-- made here too (pgtests/detection/history_call_candidates.sql holds them to it).
CREATE OR REPLACE FUNCTION guard.history_call_candidates(since timestamptz, until timestamptz)
RETURNS TABLE (check_id text, entity_ids bigint[])
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
SET jit = off
-- The planner expects a third of the calls to leave the join, and so merges them by call in one
-- process; a few hundred do (the offending ones), and the parallel hash join takes 40 % less.
SET parallel_tuple_cost = 0.01
AS $$
BEGIN
    -- EXECUTE: planned for this range (over the whole history, the calls in index order merged
    -- with the appointments by call); a plan for any range probed a million calls one by one.
    RETURN QUERY EXECUTE $query$
    SELECT u.check_id, u.entity_ids
    FROM (
        SELECT
            coalesce(array_agg(DISTINCT f.id) FILTER (WHERE f.booked), '{}') AS booked,
            coalesce(array_agg(DISTINCT f.id) FILTER (WHERE f.contradicting), '{}') AS contradicting,
            coalesce(array_agg(DISTINCT f.id) FILTER (WHERE f.without_direction), '{}') AS without_direction
        FROM (
            SELECT
                c.id,
                (c.appointment_made OR c.session_outcome = 'appointment_booked') AND a.call_id IS NULL AS booked,
                a.call_id IS NOT NULL AND NOT coalesce(
                    c.appointment_made
                    AND c.appointment_link_status = 'linked'
                    AND c.appointment_linked_at IS NOT NULL
                    AND c.session_outcome = 'appointment_booked'
                    AND NOT c.booking_failed,
                    FALSE
                ) AS contradicting,
                c.direction IS NULL OR c.direction NOT IN ('inbound', 'outbound') AS without_direction
            FROM public.calls AS c
            LEFT JOIN public.appointments AS a
                ON
                    c.id = a.call_id
                    AND c.company_id = a.company_id
                    AND guard.is_active_appointment(a.status, a.deleted_at)
            WHERE
                guard.app_time(c.created_at, (SELECT guard.app_time_zone())) >= $1
                AND guard.app_time(c.created_at, (SELECT guard.app_time_zone())) < $2
        ) AS f
        WHERE f.booked OR f.contradicting OR f.without_direction
    ) AS found
    CROSS JOIN LATERAL (
        VALUES
        ('booked_without_appointment', found.booked),
        ('flags_contradict_appointments', found.contradicting),
        ('call_without_direction', found.without_direction)
    ) AS u (check_id, entity_ids)
    $query$ USING since, until;
END;
$$;
