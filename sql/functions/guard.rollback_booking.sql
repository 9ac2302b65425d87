-- I7, the booking journal and the booking path.
-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed (link status
-- creation_failed) and for manual processing, raise an alert and queue a review item. The flags
-- are left alone when the call still has an active appointment (an earlier booking stands); the
-- alert and review item are raised either way. reason is the review reason (validation_failure,
-- calendar_booking_failure, customer_creation_failure, service_not_found, other); context is
-- what a reviewer needs (no phone numbers). Returns the review item's id.
-- SECURITY DEFINER: the application calls it and may not write alerts or review items itself;
-- a session with a tenant set may only roll back that tenant's calls.
-- Alert and review details are JSON objects (a CHECK on guard.alerts): a context that is not an
-- object (a string, an array, JSON null) is kept, wrapped as {"context": <value>}, rather than
-- refused, because refusing would lose the rollback of a booking that already went wrong. Its
-- keys never replace reason and still_booked. A NULL call or reason, an unknown call and a
-- reason that is not a review reason are refused with an error, and nothing is written.
CREATE OR REPLACE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    the_call record;
    still_booked boolean;
    context_object jsonb := CASE
        WHEN rollback_booking.context IS NULL THEN '{}'::jsonb
        WHEN jsonb_typeof(rollback_booking.context) = 'object' THEN rollback_booking.context
        ELSE jsonb_build_object('context', rollback_booking.context)
    END;
BEGIN
    IF rollback_booking.call_id IS NULL OR rollback_booking.reason IS NULL THEN
        RAISE EXCEPTION 'rollback_booking needs a call id and a review reason'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.id, c.company_id INTO the_call
    FROM public.calls AS c WHERE c.id = rollback_booking.call_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', rollback_booking.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);
    still_booked := EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.call_id = the_call.id
            AND a.company_id = the_call.company_id
            AND guard.is_active_appointment(a.status, a.deleted_at)
    );
    IF NOT still_booked THEN
        UPDATE public.calls AS c
        SET
            session_outcome = 'creation_failed',
            booking_failed = TRUE,
            booking_confirmed = FALSE,
            -- what the original design records for a booking the calendar never made; the
            -- derivation keeps it until an appointment links the call (I3)
            appointment_link_status = 'creation_failed',
            booking_failure_reason = rollback_booking.reason,
            requires_manual_processing = TRUE,
            updated_at = guard.to_app_time(now(), c.updated_at, guard.app_time_zone())
        WHERE c.id = the_call.id;
    END IF;

    INSERT INTO guard.alerts (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
    ) VALUES (
        'booking_rolled_back:call:' || the_call.id,
        'booking_rolled_back',
        the_call.company_id,
        'call',
        the_call.id,
        'high',
        'a booking failed and was rolled back; a review item is queued',
        context_object
        || jsonb_build_object('reason', rollback_booking.reason, 'still_booked', still_booked)
    )
    ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
        SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now();

    -- The review item's CHECK knows the reasons; an unknown one undoes everything above.
    BEGIN
        RETURN guard.enqueue_review(
            the_call.company_id, the_call.id, NULL, rollback_booking.reason,
            context_object || jsonb_build_object('still_booked', still_booked)
        );
    EXCEPTION WHEN check_violation THEN
        RAISE EXCEPTION 'unknown review reason "%"', rollback_booking.reason
            USING
                ERRCODE = 'invalid_parameter_value',
                HINT = 'validation_failure, calendar_booking_failure, customer_creation_failure,'
                || ' service_not_found or other';
    END;
END;
$$;
