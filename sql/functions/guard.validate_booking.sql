-- I7, the booking journal and the booking path.
-- Post-booking validation, in one round trip: the appointment just recorded exists, is active,
-- belongs to the call and the call's company, carries the calendar's booking uid, is recent
-- (validation_recent_seconds), and the call's flags say booked. Returns ok, or the first failing
-- reason with what was expected and found, and the latency. Every call is recorded, with its
-- latency, in guard.validation_metrics (validation_latency_daily gives p50/p95/p99 per day).
-- SECURITY DEFINER: the application calls it and may not write validation_metrics itself; a
-- session with a tenant set may only validate that tenant's calls and appointments.
-- Refused with an error, and nothing recorded: a NULL argument or an unknown call (a metric row
-- must belong to a real call of a company, or the daily latency view and the failure rate fill
-- with rows no tenant owns, from any id the application role cares to send). An unknown
-- appointment is a result, appointment_not_found, recorded against the call: the booking path
-- reads it as "the calendar said booked but no row was written", the failure this validation
-- exists to catch, and an error would make the application's retry, not its rollback, run.
-- The reasons are listed in docs/bi.md ("Validation failure reasons").
CREATE OR REPLACE FUNCTION guard.validate_booking(call_id bigint, appointment_id bigint, booking_uid text)
RETURNS TABLE (ok boolean, reason text, details jsonb, latency_ms double precision)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    the_call record;
    the_appointment record;
    appointment_found boolean;
BEGIN
    IF validate_booking.call_id IS NULL
        OR validate_booking.appointment_id IS NULL
        OR validate_booking.booking_uid IS NULL THEN
        RAISE EXCEPTION 'validate_booking needs a call id, an appointment id and a booking uid'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.id, c.company_id, c.appointment_made, c.appointment_link_status,
           c.session_outcome, c.booking_failed
    INTO the_call
    FROM public.calls AS c WHERE c.id = validate_booking.call_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', validate_booking.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);
    SELECT a.id, a.company_id, a.call_id, a.status, a.deleted_at, a.calcom_v2_booking_id,
           a.created_at
    INTO the_appointment
    FROM public.appointments AS a WHERE a.id = validate_booking.appointment_id;
    appointment_found := FOUND;
    IF appointment_found THEN
        PERFORM guard.assert_tenant(the_appointment.company_id);
    END IF;

    ok := FALSE;
    IF NOT appointment_found THEN
        reason := 'appointment_not_found';
        details := jsonb_build_object('appointment_id', validate_booking.appointment_id);
    ELSIF the_appointment.deleted_at IS NOT NULL OR the_appointment.status = 'cancelled' THEN
        reason := 'appointment_inactive';
        details := jsonb_build_object(
            'status', the_appointment.status, 'deleted_at', the_appointment.deleted_at
        );
    ELSIF the_appointment.call_id IS DISTINCT FROM the_call.id THEN
        reason := 'appointment_not_on_call';
        details := jsonb_build_object(
            'expected_call_id', the_call.id, 'appointment_call_id', the_appointment.call_id
        );
    ELSIF the_appointment.company_id IS DISTINCT FROM the_call.company_id THEN
        reason := 'company_mismatch';
        details := jsonb_build_object(
            'call_company_id', the_call.company_id,
            'appointment_company_id', the_appointment.company_id
        );
    ELSIF the_appointment.calcom_v2_booking_id IS DISTINCT FROM validate_booking.booking_uid THEN
        reason := 'booking_uid_mismatch';
        details := jsonb_build_object(
            'expected', validate_booking.booking_uid,
            'found', the_appointment.calcom_v2_booking_id
        );
    ELSIF guard.app_time(the_appointment.created_at, guard.app_time_zone()) < now() - make_interval(
        secs => (guard.setting('validation_recent_seconds') #>> '{}')::integer
    ) THEN
        reason := 'appointment_not_recent';
        details := jsonb_build_object('created_at', the_appointment.created_at);
    ELSIF NOT coalesce(
        the_call.appointment_made
        AND the_call.appointment_link_status = 'linked'
        AND the_call.session_outcome = 'appointment_booked'
        AND NOT the_call.booking_failed,
        FALSE
    ) THEN
        reason := 'call_flags_disagree';
        details := jsonb_build_object(
            'appointment_made', the_call.appointment_made,
            'appointment_link_status', the_call.appointment_link_status,
            'session_outcome', the_call.session_outcome,
            'booking_failed', the_call.booking_failed
        );
    ELSE
        ok := TRUE;
        details := jsonb_build_object('booking_uid', validate_booking.booking_uid);
    END IF;

    latency_ms := 1000 * extract(EPOCH FROM clock_timestamp() - started);
    PERFORM guard.record_validation(
        the_call.company_id, validate_booking.call_id, validate_booking.appointment_id, ok, reason,
        latency_ms
    );
    RETURN NEXT;
END;
$$;
