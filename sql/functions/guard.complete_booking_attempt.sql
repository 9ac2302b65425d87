-- I7, the booking journal and the booking path.
-- Close a booking attempt as booked, in the transaction that recorded its appointment (commit
-- both or neither). The appointment must be an active appointment of the attempt's call and
-- company carrying booking_uid. An attempt that was still calling becomes booked; one whose
-- outcome was unknown (or that is past its timeout) becomes recovered, and its review item and
-- alert are closed. An attempt that was already settled is an error (SQLSTATE 55000): its call
-- may have been rolled back and reviewed meanwhile, and the caller must treat this booking as a
-- failure to review, not as a success. calendar_calls: how many times the booking path asked the
-- calendar for it (retries included), kept in the journal for guard_booking_retries_total; NULL
-- from a caller that did not count (recover_attempts, a reconciliation).
-- SECURITY DEFINER: the application may not write the journal itself; a session with a tenant
-- set may only close that tenant's attempts.
CREATE OR REPLACE FUNCTION guard.complete_booking_attempt(
    idempotency_key text, appointment_id bigint, booking_uid text, calendar_calls integer DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt record;
    new_state text;
BEGIN
    IF complete_booking_attempt.idempotency_key IS NULL OR complete_booking_attempt.appointment_id IS NULL
        OR complete_booking_attempt.booking_uid IS NULL THEN
        RAISE EXCEPTION 'complete_booking_attempt needs a key, an appointment and a booking uid'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT b.id, b.company_id, b.call_id, b.state, b.created_at INTO attempt
    FROM guard.booking_attempts AS b
    WHERE b.idempotency_key = complete_booking_attempt.idempotency_key
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking attempt with this idempotency key'
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(attempt.company_id);
    IF attempt.state NOT IN ('calling', 'unknown') THEN
        RAISE EXCEPTION 'booking attempt % is already settled (%)', attempt.id, attempt.state
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.id = complete_booking_attempt.appointment_id
            AND a.call_id = attempt.call_id
            AND a.company_id = attempt.company_id
            AND a.calcom_v2_booking_id = complete_booking_attempt.booking_uid
            AND guard.is_active_appointment(a.status, a.deleted_at)
    ) THEN
        RAISE EXCEPTION 'appointment % is not an active appointment of call % with booking uid %',
            complete_booking_attempt.appointment_id, attempt.call_id, complete_booking_attempt.booking_uid
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    new_state := CASE
        WHEN attempt.state = 'unknown' OR attempt.created_at < now() - make_interval(
            secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
        ) THEN 'recovered'
        ELSE 'booked'
    END;
    UPDATE guard.booking_attempts AS b
    SET
        state = new_state,
        finished_at = now(),
        appointment_id = complete_booking_attempt.appointment_id,
        booking_uid = complete_booking_attempt.booking_uid,
        calendar_calls = complete_booking_attempt.calendar_calls
    WHERE b.id = attempt.id AND b.created_at = attempt.created_at;
    IF attempt.state = 'unknown' THEN
        PERFORM guard.settle_unknown_booking_attempt(
            attempt.id, attempt.call_id,
            'the calendar booked it; recorded as appointment ' || complete_booking_attempt.appointment_id
        );
    END IF;
    RETURN new_state;
END;
$$;
