-- I7, the booking journal and the booking path.
-- Start a booking attempt for a call, before the calendar is called; the caller commits it
-- first (durably: synchronous_commit on) and only then calls the calendar with the returned
-- idempotency key. outcome:
--   started         a new attempt in state calling; call the calendar with idempotency_key
--   already_booked  the call has an active appointment (appointment_id, booking_uid): a booking
--                   that succeeded is returned, the calendar is not called again
--   in_flight       another attempt for the call is calling and not timed out: refused
--   outcome_unknown an earlier attempt timed out and is not settled (it is, or will be, in review
--                   as booking_outcome_unknown): refused until recover_attempts or a person
--                   settles it, because a new key would let the calendar book the call twice
-- The call row is locked (FOR NO KEY UPDATE) so that two attempts for one call serialise here;
-- the unique index booking_attempts_one_unsettled_per_call backs it up.
-- trace_id: the OpenTelemetry trace the booking path began the attempt in (32 hex digits), kept
-- with a started attempt so that its journal row leads to its trace (docs/tracing.md); NULL
-- without tracing.
-- SECURITY DEFINER: the application may not write the journal itself; a session with a tenant
-- set may only book that tenant's calls.
CREATE OR REPLACE FUNCTION guard.begin_booking_attempt(
    call_id bigint, service_id bigint, trace_id text DEFAULT NULL
)
RETURNS TABLE (
    outcome text, attempt_id bigint, idempotency_key text, appointment_id bigint, booking_uid text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    the_call record;
    earlier record;
    timeout interval := make_interval(
        secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
    );
BEGIN
    IF begin_booking_attempt.call_id IS NULL OR begin_booking_attempt.service_id IS NULL THEN
        RAISE EXCEPTION 'begin_booking_attempt needs a call and a service'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.id, c.company_id INTO the_call
    FROM public.calls AS c WHERE c.id = begin_booking_attempt.call_id
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', begin_booking_attempt.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);

    SELECT 'already_booked', a.id, a.calcom_v2_booking_id
    INTO outcome, appointment_id, booking_uid
    FROM public.appointments AS a
    WHERE
        a.call_id = the_call.id
        AND a.company_id = the_call.company_id
        AND guard.is_active_appointment(a.status, a.deleted_at)
    ORDER BY a.id
    LIMIT 1;
    IF FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT b.id, b.idempotency_key, b.state, b.created_at INTO earlier
    FROM guard.booking_attempts AS b
    WHERE b.call_id = the_call.id AND b.state IN ('calling', 'unknown');
    IF FOUND THEN
        outcome := CASE
            WHEN earlier.state = 'calling' AND earlier.created_at >= now() - timeout THEN 'in_flight'
            ELSE 'outcome_unknown'
        END;
        attempt_id := earlier.id;
        idempotency_key := earlier.idempotency_key;
        RETURN NEXT;
        RETURN;
    END IF;

    INSERT INTO guard.booking_attempts (
        company_id, call_id, service_id, idempotency_key, trace_id
    )
    VALUES (
        the_call.company_id, the_call.id, begin_booking_attempt.service_id, gen_random_uuid()::text,
        begin_booking_attempt.trace_id
    )
    RETURNING 'started', id, booking_attempts.idempotency_key
    INTO outcome, attempt_id, idempotency_key;
    RETURN NEXT;
END;
$$;
