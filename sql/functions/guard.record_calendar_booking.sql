-- Record a booking the calendar holds for a call when the booking path will never record it:
-- recover_attempts (the booking process died after the calendar answered), a failover's orphan,
-- and the calendar's reconciliation (a booking only the calendar had). Inserts the appointment
-- and puts the booking uid on the call (the triggers derive its flags), unless an active
-- appointment of the call already carries that uid (recorded meanwhile by the booking process,
-- a reconciliation or a person): that one is the booking, nothing is written. With an
-- idempotency key, the attempt is closed as booked (guard.complete_booking_attempt, which
-- refuses, SQLSTATE 55000, an attempt settled meanwhile). Returns the appointment's id.
-- Unlike guard.record_booking it does not validate and queues nothing: the calendar's booking
-- is a fact to record, and detection judges the call like any other.
-- The commit is made durable (synchronous_commit on for this transaction). SECURITY INVOKER:
-- the appointment and the call's update are the application's own writes, under its rights,
-- row-level security and triggers; a call it may not see is no call (SQLSTATE P0002).
CREATE OR REPLACE FUNCTION guard.record_calendar_booking(
    call_id bigint,
    service_id bigint,
    booking_uid text,
    starts_at timestamptz,
    ends_at timestamptz,
    booking_details jsonb,
    source text,
    idempotency_key text DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_call record;
    appointment_id bigint;
BEGIN
    IF record_calendar_booking.booking_uid IS NULL OR record_calendar_booking.call_id IS NULL THEN
        RAISE EXCEPTION 'record_calendar_booking needs the call and the calendar''s booking uid'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('synchronous_commit', 'on', TRUE);
    SELECT c.company_id, c.customer_id INTO found_call
    FROM public.calls AS c
    WHERE c.id = record_calendar_booking.call_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', record_calendar_booking.call_id
            USING ERRCODE = 'no_data_found';
    END IF;

    SELECT a.id INTO appointment_id
    FROM public.appointments AS a
    WHERE
        a.call_id = record_calendar_booking.call_id
        AND a.company_id = found_call.company_id
        AND a.calcom_v2_booking_id = record_calendar_booking.booking_uid
        AND guard.is_active_appointment(a.status, a.deleted_at)
    ORDER BY a.id
    LIMIT 1;
    IF NOT FOUND THEN
        INSERT INTO public.appointments (
            company_id, call_id, customer_id, service_id, calcom_v2_booking_id, source,
            starts_at, ends_at
        )
        VALUES (
            found_call.company_id, record_calendar_booking.call_id, found_call.customer_id,
            record_calendar_booking.service_id, record_calendar_booking.booking_uid,
            record_calendar_booking.source, record_calendar_booking.starts_at,
            record_calendar_booking.ends_at
        )
        RETURNING id INTO appointment_id;
        UPDATE public.calls AS c
        SET
            booking_id = record_calendar_booking.booking_uid,
            booking_details = coalesce(record_calendar_booking.booking_details, '{}'),
            booking_confirmed = TRUE,
            updated_at = guard.to_app_time(now(), c.updated_at, guard.app_time_zone())
        WHERE c.id = record_calendar_booking.call_id;
    END IF;

    IF record_calendar_booking.idempotency_key IS NOT NULL THEN
        -- recovered, not booked by the booking path: its calendar calls are not known here
        PERFORM guard.complete_booking_attempt(
            record_calendar_booking.idempotency_key, appointment_id,
            record_calendar_booking.booking_uid, NULL
        );
    END IF;
    RETURN appointment_id;
END;
$$;
