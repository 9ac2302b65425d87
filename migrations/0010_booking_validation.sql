-- Post-booking validation (guard.validate_booking, its latency view) and the atomic rollback of
-- a failed booking (guard.rollback_booking).

-- Alerts raised by the booking path (not by a detection view).
INSERT INTO guard.rules (id, invariant, severity, description, remedy, stage) VALUES
(
    'booking_rolled_back', 'I7', 'high',
    'A booking failed (calendar, validation, or an open circuit) and was rolled back.',
    'review', 'observe'
);

-- Record one post-booking validation and its latency: the one place guard.validation_metrics is
-- written (validate_booking, and the booking path after it rolled a failed booking back, which
-- took the first record with it).
CREATE FUNCTION guard.record_validation(
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    ok boolean,
    failure_reason text,
    latency_ms double precision
)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    INSERT INTO guard.validation_metrics (
        company_id, call_id, appointment_id, ok, failure_reason, latency_ms
    ) VALUES (
        record_validation.company_id, record_validation.call_id, record_validation.appointment_id,
        record_validation.ok, record_validation.failure_reason, record_validation.latency_ms
    );
$$;

-- Post-booking validation, in one round trip: the appointment just recorded exists, is active,
-- belongs to the call and the call's company, carries the calendar's booking uid, is recent
-- (validation_recent_seconds), and the call's flags say booked. Returns ok, or the first failing
-- reason with what was expected and found, and the latency. Every call is recorded, with its
-- latency, in guard.validation_metrics (validation_latency_daily gives p50/p95/p99 per day).
CREATE FUNCTION guard.validate_booking(call_id bigint, appointment_id bigint, booking_uid text)
RETURNS TABLE (ok boolean, reason text, details jsonb, latency_ms double precision)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    the_call record;
    the_appointment record;
BEGIN
    SELECT c.id, c.company_id, c.appointment_made, c.appointment_link_status,
           c.session_outcome, c.booking_failed
    INTO the_call
    FROM public.calls AS c WHERE c.id = validate_booking.call_id;
    SELECT a.id, a.company_id, a.call_id, a.status, a.deleted_at, a.calcom_v2_booking_id,
           a.created_at
    INTO the_appointment
    FROM public.appointments AS a WHERE a.id = validate_booking.appointment_id;

    ok := FALSE;
    IF the_call.id IS NULL THEN
        reason := 'call_missing';
        details := jsonb_build_object('call_id', validate_booking.call_id);
    ELSIF the_appointment.id IS NULL THEN
        reason := 'appointment_missing';
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
    ELSIF the_appointment.created_at < now() - make_interval(
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

-- For BI: post-booking validations per day and company, failures, and latency percentiles.
CREATE VIEW guard.validation_latency_daily WITH (security_invoker = TRUE) AS
SELECT
    (m.measured_at AT TIME ZONE 'UTC')::date AS day,
    m.company_id,
    count(*) AS validations,
    count(*) FILTER (WHERE NOT m.ok) AS failures,
    round(percentile_cont(0.50) WITHIN GROUP (ORDER BY m.latency_ms)::numeric, 3) AS p50_ms,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY m.latency_ms)::numeric, 3) AS p95_ms,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY m.latency_ms)::numeric, 3) AS p99_ms,
    round(max(m.latency_ms)::numeric, 3) AS max_ms
FROM guard.validation_metrics AS m
GROUP BY 1, 2;

-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed and for manual
-- processing, raise an alert and queue a review item. The flags are left alone when the call
-- still has an active appointment (an earlier booking stands); the alert and review item are
-- raised either way. reason is the review reason (validation_failure,
-- calendar_booking_failure, customer_creation_failure, service_not_found, other); context is
-- what a reviewer needs (no phone numbers). Returns the review item's id.
CREATE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    the_call record;
    still_booked boolean;
BEGIN
    SELECT c.id, c.company_id INTO the_call
    FROM public.calls AS c WHERE c.id = rollback_booking.call_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', rollback_booking.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    still_booked := EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.call_id = the_call.id
            AND a.company_id = the_call.company_id
            AND a.deleted_at IS NULL
            AND a.status IS DISTINCT FROM 'cancelled'
    );
    IF NOT still_booked THEN
        UPDATE public.calls AS c
        SET
            session_outcome = 'creation_failed',
            booking_failed = TRUE,
            booking_confirmed = FALSE,
            booking_failure_reason = rollback_booking.reason,
            requires_manual_processing = TRUE,
            updated_at = now()
        WHERE c.id = the_call.id;
    END IF;

    INSERT INTO guard.alerts (
        fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
    ) VALUES (
        'booking_rolled_back:call:' || the_call.id,
        'booking_rolled_back',
        the_call.company_id,
        'call',
        the_call.id,
        'high',
        'a booking failed and was rolled back; a review item is queued',
        jsonb_build_object('reason', rollback_booking.reason, 'still_booked', still_booked)
        || coalesce(rollback_booking.context, '{}')
    )
    ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
        SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now();

    RETURN guard.enqueue_review(
        the_call.company_id, the_call.id, NULL, rollback_booking.reason,
        coalesce(rollback_booking.context, '{}') || jsonb_build_object('still_booked', still_booked)
    );
END;
$$;
