-- I3, I4, I7: the booking path's last step.
-- Call-end validation, for the voice platform's "call ended" event (the original design's
-- handleCallEnd): once the call is over nothing about its booking may still be in flight, so what
-- detection tolerates during the call (the grace period of a booked outcome, an attempt still
-- calling the calendar) is a problem now. Returns one row per problem, in a fixed order, each with
-- the application's expected reaction (README, "The call ends"); no row: the call ended consistent.
-- Reads only: detection and reconciliation raise the alerts later whatever the application does
-- with the answer, so a problem the application ignores is not lost.
-- SECURITY DEFINER: the application may not read the booking journal itself; a session with a
-- tenant set may only validate that tenant's calls. A NULL or unknown call is refused with an
-- error (an unknown call would otherwise read as "ended consistent").
CREATE OR REPLACE FUNCTION guard.validate_call_end(call_id bigint)
RETURNS TABLE (problem text, details jsonb, reaction text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    the_call record;
    active_appointments bigint[];
    unsettled record;
    phantom boolean;
BEGIN
    IF validate_call_end.call_id IS NULL THEN
        RAISE EXCEPTION 'validate_call_end needs a call id'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.id, c.company_id, c.session_outcome, c.appointment_made, c.appointment_link_status,
           c.appointment_linked_at, c.booking_failed, c.requires_manual_processing
    INTO the_call
    FROM public.calls AS c WHERE c.id = validate_call_end.call_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', validate_call_end.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);

    SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}')
    INTO active_appointments
    FROM public.appointments AS a
    WHERE
        a.call_id = the_call.id
        AND a.company_id = the_call.company_id
        AND guard.is_active_appointment(a.status, a.deleted_at);

    -- First: while an attempt is unsettled the calendar may hold a booking the database does not,
    -- and every other answer below may change once it is settled.
    SELECT b.idempotency_key, b.state, b.created_at
    INTO unsettled
    FROM guard.booking_attempts AS b
    WHERE b.call_id = the_call.id AND b.state IN ('calling', 'unknown')
    ORDER BY b.created_at
    LIMIT 1;
    IF FOUND THEN
        problem := 'booking_attempt_unsettled';
        details := jsonb_build_object(
            'idempotency_key', unsettled.idempotency_key, 'state', unsettled.state,
            'started_at', unsettled.created_at
        );
        reaction := 'recover_attempts';
        RETURN NEXT;
    END IF;

    IF the_call.session_outcome IS NULL THEN
        problem := 'outcome_missing';
        details := jsonb_build_object('session_outcome', NULL);
        reaction := 'record_outcome';
        RETURN NEXT;
    END IF;

    phantom := cardinality(active_appointments) = 0
        AND (
            the_call.session_outcome IS NOT DISTINCT FROM 'appointment_booked'
            OR the_call.appointment_made IS TRUE
        );
    IF phantom THEN
        problem := 'booked_without_appointment';
        details := jsonb_build_object(
            'session_outcome', the_call.session_outcome,
            'appointment_made', the_call.appointment_made
        );
        reaction := 'rollback_booking';
        RETURN NEXT;
    END IF;

    -- The triggers derive these flags on every write, so this is seen only where they were
    -- bypassed (disabled triggers, a replica session, rows older than Booking Guard). The rule is
    -- detection's (guard.call_flags_contradict), so a call that ends consistent here raises no
    -- flags alert a minute later; a phantom booking is reported above as such, not twice.
    IF NOT phantom
        AND guard.call_flags_contradict(
            the_call.appointment_made,
            the_call.appointment_link_status,
            the_call.appointment_linked_at,
            the_call.session_outcome,
            the_call.booking_failed,
            cardinality(active_appointments) > 0
        ) THEN
        problem := 'flags_contradict_appointments';
        details := jsonb_build_object(
            'appointment_ids', to_jsonb(active_appointments),
            'appointment_made', the_call.appointment_made,
            'appointment_link_status', the_call.appointment_link_status,
            'appointment_linked_at', the_call.appointment_linked_at,
            'session_outcome', the_call.session_outcome,
            'booking_failed', the_call.booking_failed
        );
        reaction := 'check_call';
        RETURN NEXT;
    END IF;

    -- A failure nobody is asked to look at is the incident's silent failure: rollback_booking
    -- sets both, an application writing booking_failed by hand may set only one.
    IF the_call.booking_failed
        AND NOT the_call.requires_manual_processing
        AND cardinality(active_appointments) = 0 THEN
        problem := 'failure_not_queued';
        details := jsonb_build_object(
            'booking_failed', the_call.booking_failed,
            'requires_manual_processing', the_call.requires_manual_processing
        );
        reaction := 'rollback_booking';
        RETURN NEXT;
    END IF;
END;
$$;
