-- Undo 0017_app_function_hardening: drop the CHECK on alert details and restore the functions.
-- Wrapped alert details stay wrapped (they are objects, which every version reads).

SET LOCAL lock_timeout = '5s';

ALTER TABLE guard.alerts DROP CONSTRAINT alerts_details_is_object;

-- Every rule for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
-- SECURITY DEFINER: the application calls it and may not write alerts itself (run_detection
-- stays SECURITY INVOKER and runs here with the owner's rights); a session with a tenant set may
-- only check that tenant's calls.
CREATE OR REPLACE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = check_call.call_id;
    END IF;
    RETURN QUERY
    SELECT d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(NULL, check_call.call_id) AS d;
END;
$$;

-- Post-booking validation, in one round trip: the appointment just recorded exists, is active,
-- belongs to the call and the call's company, carries the calendar's booking uid, is recent
-- (validation_recent_seconds), and the call's flags say booked. Returns ok, or the first failing
-- reason with what was expected and found, and the latency. Every call is recorded, with its
-- latency, in guard.validation_metrics (validation_latency_daily gives p50/p95/p99 per day).
-- SECURITY DEFINER: the application calls it and may not write validation_metrics itself; a
-- session with a tenant set may only validate that tenant's calls.
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
BEGIN
    SELECT c.id, c.company_id, c.appointment_made, c.appointment_link_status,
           c.session_outcome, c.booking_failed
    INTO the_call
    FROM public.calls AS c WHERE c.id = validate_booking.call_id;
    IF FOUND THEN
        PERFORM guard.assert_tenant(the_call.company_id);
    END IF;
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

-- Record one post-booking validation and its latency: the one place guard.validation_metrics is
-- written (validate_booking, and the booking path after it rolled a failed booking back, which
-- took the first record with it). SECURITY DEFINER: the application may not write
-- validation_metrics itself; a session with a tenant set may only record for that tenant.
CREATE OR REPLACE FUNCTION guard.record_validation(
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    ok boolean,
    failure_reason text,
    latency_ms double precision
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM guard.assert_tenant(record_validation.company_id);
    INSERT INTO guard.validation_metrics (
        company_id, call_id, appointment_id, ok, failure_reason, latency_ms
    ) VALUES (
        record_validation.company_id, record_validation.call_id, record_validation.appointment_id,
        record_validation.ok, record_validation.failure_reason, record_validation.latency_ms
    );
END;
$$;

-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed and for manual
-- processing, raise an alert and queue a review item. The flags are left alone when the call
-- still has an active appointment (an earlier booking stands); the alert and review item are
-- raised either way. reason is the review reason (validation_failure,
-- calendar_booking_failure, customer_creation_failure, service_not_found, other); context is
-- what a reviewer needs (no phone numbers). Returns the review item's id.
-- SECURITY DEFINER: the application calls it and may not write alerts or review items itself;
-- a session with a tenant set may only roll back that tenant's calls.
CREATE OR REPLACE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
    PERFORM guard.assert_tenant(the_call.company_id);
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

-- I3, I4: recompute the booking flags of the given calls from their active appointments and
-- correct the rows that differ, in one set-based statement. Every path that can unbook a call
-- derives its flags here (a new appointment only ever books: see sync_flags_after_appointment_insert).
--   lost_from     calls that just lost an active appointment: with none left, a booked outcome
--                 becomes appointment_cancelled and the booking is no longer confirmed
--   audit_reason  the calls were written by someone else (the application, a legacy load): each
--                 correction is audited with before and after, and one alert per company raised
--   check_only    count the calls that would change, change nothing
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked outcome without an
-- appointment is left alone here: it is legitimate during the grace period (detection's job).
-- SECURITY DEFINER: the application's writes fire it (through its triggers) and it writes the
-- correction audit and alerts, which the application may not write itself.
CREATE OR REPLACE FUNCTION guard.refresh_call_flags(
    call_ids bigint[],
    lost_from bigint[] DEFAULT '{}',
    audit_reason text DEFAULT NULL,
    check_only boolean DEFAULT FALSE
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compiles this function's large statements for longer than they run (bench/triggers.py:
-- a 10 000-row delete took 1.7 s with JIT, 0.3 s without).
SET jit = off
-- Custom plans re-plan the big statement on every call, and PostgreSQL kept choosing them: a
-- one-row appointment update or delete spent about 5.7 million of its 7.5 million instructions
-- planning (bench/instructions.py). The generic plan is index lookups joined by nested loops,
-- linear in the number of calls (a 10 000-row delete: 15 % more instructions, no worse shape).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    differing integer;
BEGIN
    -- A session with a tenant set may only touch that tenant's calls.
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids) AND c.company_id IS DISTINCT FROM guard.current_company();
    END IF;
    -- Lock the calls first, in id order, and look at their appointments in the next statement:
    -- under READ COMMITTED its snapshot sees every appointment committed by a writer we waited
    -- for, so concurrent writers cannot leave a call with flags derived from a stale view
    -- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking.
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    -- The calls as a set with their "lost one" flag: a join, not `id = ANY (lost_from)` per
    -- row, which is a linear search of the array once the plan is generic (a cached plan: the
    -- array is then a parameter, not a constant that could be hashed). With generic plans that
    -- made a 10 000-row delete 2.4x slower (bench/triggers.py --generic-plans).
    WITH target AS (
        SELECT t.id, bool_or(t.lost) AS lost_one
        FROM (
            SELECT x.id, FALSE AS lost FROM unnest(call_ids) AS x (id)
            UNION ALL
            SELECT x.id, TRUE AS lost FROM unnest(lost_from) AS x (id)
        ) AS t
        GROUP BY t.id
        HAVING NOT bool_and(t.lost)  -- only the given calls; lost_from is a subset of them
    ),

    current_state AS (
        SELECT
            c.id,
            c.company_id,
            c.appointment_made,
            c.appointment_link_status,
            c.appointment_linked_at,
            c.session_outcome,
            c.booking_failed,
            c.booking_confirmed,
            t.lost_one,
            EXISTS (
                SELECT
                FROM public.appointments AS a
                WHERE
                    a.call_id = c.id
                    AND a.company_id = c.company_id
                    AND a.deleted_at IS NULL
                    AND a.status IS DISTINCT FROM 'cancelled'
            ) AS has_active
        FROM target AS t
        INNER JOIN public.calls AS c ON t.id = c.id
    ),

    derived AS (
        SELECT
            s.*,
            s.has_active AS new_made,
            CASE
                WHEN s.has_active THEN 'linked'
                WHEN s.appointment_link_status IS NULL THEN NULL
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(s.appointment_linked_at, now())
                ELSE s.appointment_linked_at
            END AS new_linked_at,
            CASE
                WHEN s.has_active THEN 'appointment_booked'
                WHEN s.lost_one AND s.session_outcome = 'appointment_booked'
                    THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (s.lost_one AND NOT s.has_active) AS new_confirmed
        FROM current_state AS s
    ),

    changed AS (
        SELECT d.*
        FROM derived AS d
        WHERE (
            d.appointment_made, d.appointment_link_status, d.appointment_linked_at,
            d.session_outcome, d.booking_failed, d.booking_confirmed
        ) IS DISTINCT FROM (
            d.new_made, d.new_link_status, d.new_linked_at,
            d.new_outcome, d.new_failed, d.new_confirmed
        )
    ),

    updated AS (
        UPDATE public.calls AS c
        SET
            appointment_made = ch.new_made,
            appointment_link_status = ch.new_link_status,
            appointment_linked_at = ch.new_linked_at,
            session_outcome = ch.new_outcome,
            booking_failed = ch.new_failed,
            booking_confirmed = ch.new_confirmed,
            updated_at = now()
        FROM changed AS ch
        WHERE c.id = ch.id AND NOT check_only
        RETURNING c.id
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason, actor
        )
        SELECT
            'I3_appointment_flags',
            ch.company_id,
            'call',
            ch.id,
            jsonb_build_object(
                'appointment_made', ch.appointment_made,
                'appointment_link_status', ch.appointment_link_status,
                'appointment_linked_at', ch.appointment_linked_at,
                'session_outcome', ch.session_outcome,
                'booking_failed', ch.booking_failed,
                'booking_confirmed', ch.booking_confirmed
            ),
            jsonb_build_object(
                'appointment_made', ch.new_made,
                'appointment_link_status', ch.new_link_status,
                'appointment_linked_at', ch.new_linked_at,
                'session_outcome', ch.new_outcome,
                'booking_failed', ch.new_failed,
                'booking_confirmed', ch.new_confirmed
            ),
            audit_reason,
            session_user  -- who wrote: current_user is the owner here (SECURITY DEFINER)
        FROM changed AS ch
        WHERE audit_reason IS NOT NULL AND NOT check_only
        RETURNING company_id, entity_id
    ),

    alerted AS (
        INSERT INTO guard.alerts (
            fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            'I3_appointment_flags:company:' || au.company_id || ':corrected_writes',
            'I3_appointment_flags',
            au.company_id,
            'company',
            au.company_id,
            'medium',
            'booking flags that contradicted the appointments were corrected',
            jsonb_build_object(
                'corrected_calls', count(*),
                'sample_call_ids', (array_agg(au.entity_id ORDER BY au.entity_id))[1:10],
                'reason', audit_reason
            )
        FROM audited AS au
        GROUP BY au.company_id
        ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
            SET
                occurrences = guard.alerts.occurrences + 1,
                last_seen_at = now(),
                details = excluded.details
        RETURNING 1
    )

    SELECT count(*) INTO differing FROM changed;
    RETURN differing;
END;
$$;
