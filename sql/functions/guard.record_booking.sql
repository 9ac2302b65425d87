-- I7, the booking path for any client (docs/booking-path.md, step 3).
-- Record the calendar's booking of an attempt (guard.begin_booking) in one call, in a
-- transaction of its own: insert the appointment and put the booking uid on the call
-- (guard.record_calendar_booking; the triggers derive its flags), validate
-- (guard.validate_booking), check the deferred constraints, and close the attempt
-- (guard.complete_booking_attempt). outcome:
--   booked          recorded and valid; the attempt is closed as booked
--   recovered       the same, for an attempt past its timeout or marked unknown
--   already_booked  the call already has an active appointment carrying this booking uid
--                   (recorded by recovery, a reconciliation or a person): nothing written
--   failed          the booking did not validate (reason: the validation's reason code) or the
--                   database refused to record it (reason: recording failed: SQLSTATE xxxxx);
--                   its writes are rolled back, and the attempt is closed as failed, the call
--                   rolled back and queued for review (guard.fail_booking_attempt, whose item
--                   review_item_id is): the calendar holds a booking a person must look at
-- The commit is made durable (synchronous_commit on for this transaction), as the caller tells
-- its user "booked" after it. Errors (a NULL argument, an unknown key, another tenant's attempt)
-- leave everything as it was; the attempt stays calling and recovery settles it.
-- SECURITY INVOKER: the appointment and the call's update are the application's own writes,
-- under its rights, row-level security and triggers; the journal is reached through SECURITY
-- DEFINER functions. The deferred constraints are set IMMEDIATE for the rest of the transaction,
-- so that a refusal at commit is a failure recorded here, not an error the caller must handle.
CREATE OR REPLACE FUNCTION guard.record_booking(
    idempotency_key text,
    booking_uid text,
    starts_at timestamptz DEFAULT NULL,
    ends_at timestamptz DEFAULT NULL,
    booking_details jsonb DEFAULT '{}',
    source text DEFAULT 'retell_webhook',
    calendar_calls integer DEFAULT NULL
)
RETURNS TABLE (outcome text, appointment_id bigint, review_item_id bigint, reason text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt record;
    valid boolean;
    validation_reason text;
    validation_details jsonb;
    validation_latency double precision;
    error_state text;
    error_message text;
    failure jsonb;
BEGIN
    IF record_booking.booking_uid IS NULL THEN
        RAISE EXCEPTION 'record_booking needs the calendar''s booking uid'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('synchronous_commit', 'on', TRUE);
    SELECT * INTO STRICT attempt FROM guard.booking_attempt_to_record(record_booking.idempotency_key);

    SELECT a.id INTO appointment_id
    FROM public.appointments AS a
    WHERE
        a.call_id = attempt.call_id
        AND a.company_id = attempt.company_id
        AND a.calcom_v2_booking_id = record_booking.booking_uid
        AND guard.is_active_appointment(a.status, a.deleted_at)
    ORDER BY a.id
    LIMIT 1;
    IF FOUND THEN
        outcome := 'already_booked';
        IF attempt.state IN ('calling', 'unknown') THEN
            outcome := guard.complete_booking_attempt(
                record_booking.idempotency_key, appointment_id, record_booking.booking_uid,
                record_booking.calendar_calls
            );
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;

    BEGIN
        -- the appointment and the uid on the call, written as every booking is recorded
        appointment_id := guard.record_calendar_booking(
            attempt.call_id, attempt.service_id, record_booking.booking_uid,
            record_booking.starts_at, record_booking.ends_at, record_booking.booking_details,
            record_booking.source
        );
        SELECT v.ok, v.reason, v.details, v.latency_ms
        INTO valid, validation_reason, validation_details, validation_latency
        FROM guard.validate_booking(attempt.call_id, appointment_id, record_booking.booking_uid) AS v;
        IF valid THEN
            SET CONSTRAINTS ALL IMMEDIATE;
            outcome := guard.complete_booking_attempt(
                record_booking.idempotency_key, appointment_id, record_booking.booking_uid,
                record_booking.calendar_calls
            );
            RETURN NEXT;
            RETURN;
        END IF;
        -- leaving the block by an error rolls the booking's writes back
        RAISE EXCEPTION 'the booking did not validate: %', validation_reason;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS error_state = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT;
    END;

    IF valid IS FALSE THEN
        -- the validation's own record went with the rollback: record it again
        PERFORM guard.record_validation(
            attempt.company_id, attempt.call_id, appointment_id, FALSE, validation_reason,
            validation_latency
        );
        reason := validation_reason;
        failure := jsonb_build_object(
            'review_reason', 'validation_failure',
            'validation', validation_reason,
            'found', validation_details
        );
    ELSE
        reason := 'recording failed: SQLSTATE ' || error_state;
        failure := jsonb_build_object(
            'review_reason', 'calendar_booking_failure',
            'error', error_state,
            'message', left(guard.mask_phone_numbers(error_message), 200),
            'calendar_booked', TRUE
        );
    END IF;
    review_item_id := guard.fail_booking_attempt(
        record_booking.idempotency_key,
        failure ->> 'review_reason',
        (failure - 'review_reason') || jsonb_strip_nulls(jsonb_build_object(
            'reason', reason,
            'booking_uid', record_booking.booking_uid,
            'calendar_calls', record_booking.calendar_calls,
            'trace_id', attempt.trace_id
        ))
    );
    outcome := 'failed';
    appointment_id := NULL;
    RETURN NEXT;
END;
$$;
