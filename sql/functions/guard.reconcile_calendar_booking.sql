-- I7, the booking journal and the booking path.
-- One booking as the external calendar lists it, compared with the database and made to agree
-- where that is safe; guard.calendar.reconcile_calendar calls it once per booking, each in its
-- own transaction. The answer, one row:
--   in_sync    the database agrees: an active appointment carries the uid and the calendar has it
--              booked at the same time, or the calendar has it cancelled and no active
--              appointment carries it
--   rescheduled booked on both sides, the calendar at another time (a person moved it in the
--              calendar's UI, the customer rebooked through the calendar's link): every active
--              appointment carrying the uid takes the calendar's starts_at and ends_at (those it
--              gives; audited, before and after); the call's flags do not change
--   record     booked in the calendar, unknown to the database, and its call is known (the
--              attempt of idempotency_key, else call_hint, else the one call whose booking_id is
--              the uid): the caller records it in the same transaction as the booking path does
--              (the appointment with the company, call, customer and service returned here, then
--              the uid on the call: the triggers derive the flags) and closes attempt_to_close,
--              an unsettled attempt of the key, with guard.complete_booking_attempt. The owner
--              role never creates an appointment, so this function does not either
--   cancelled  cancelled in the calendar, active in the database: every active appointment
--              carrying the uid gets status 'cancelled' (the triggers derive the call's flags)
--   queued     booked in the calendar and nothing can be recorded: no call is known, the call
--              has another active appointment (a second booking in the calendar), or the
--              database has this uid cancelled; review item calendar_only_booking
--   in_flight  the attempt of idempotency_key is still calling within its timeout: its booking
--              path records it; nothing is done
-- changed says whether this call wrote anything: a second call with the same calendar answer
-- writes nothing (the appointment exists, is cancelled, or the review item exists). An item a
-- person closed is not opened again for the same uid: the person decided. A cancellation is
-- audited (guard.correction_audit, rule I7_booking_failures).
-- company_id: the company whose calendar listed the booking. NULL means a calendar that serves
-- every company the session may act on (then a booking of an unknown call is queued without a
-- company, which only the owner sees). call_hint, idempotency_key, starts_at, ends_at: what the
-- calendar knows, NULL where it knows nothing (a booking made in its own UI). A NULL uid or
-- status, an unknown status or company, a call hint that contradicts the attempt of the key,
-- and a call or appointment of another company than company_id are refused with one error, and
-- nothing is written; another tenant's call, attempt or appointment too (guard.assert_tenant).
-- SECURITY DEFINER: the application may not read the journal nor write review items or the audit
-- itself.
-- The transaction-scoped advisory lock on the uid serialises two reconciliations of the same
-- booking (an item without a call has no row to lock); the call row is then locked as
-- begin_booking_attempt locks it, so a booking path of the same call waits, and sees the result.
CREATE OR REPLACE FUNCTION guard.reconcile_calendar_booking(
    company_id bigint,
    booking_uid text,
    calendar_status text,
    starts_at timestamptz,
    ends_at timestamptz,
    call_hint bigint DEFAULT NULL,
    idempotency_key text DEFAULT NULL
)
RETURNS TABLE (
    action text,
    appointment_id bigint,
    call_id bigint,
    call_company_id bigint,
    customer_id bigint,
    service_id bigint,
    attempt_to_close text,
    review_item_id bigint,
    changed boolean
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scope bigint := reconcile_calendar_booking.company_id;
    uid text := reconcile_calendar_booking.booking_uid;
    active_ids bigint[];
    inactive record;
    attempt record;
    the_call record;
    target_call bigint;
    service bigint;
    other_active bigint;
    item bigint;
    item_details jsonb;
    problem text;
BEGIN
    IF uid IS NULL OR reconcile_calendar_booking.calendar_status IS NULL THEN
        RAISE EXCEPTION 'reconcile_calendar_booking needs a booking uid and a calendar status'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reconcile_calendar_booking.calendar_status NOT IN ('booked', 'cancelled') THEN
        RAISE EXCEPTION 'unknown calendar status "%"', reconcile_calendar_booking.calendar_status
            USING ERRCODE = 'invalid_parameter_value', HINT = 'booked or cancelled';
    END IF;
    IF scope IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM public.companies AS co WHERE co.id = scope) THEN
            RAISE EXCEPTION 'company % does not exist', scope USING ERRCODE = 'no_data_found';
        END IF;
        PERFORM guard.assert_tenant(scope);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:calendar-booking:' || uid, 0));

    -- What the database has under this uid. A company of another calendar may carry the same
    -- uid only by mistake: with a company given, only its rows count; without one, every row
    -- counts and must be the session's to touch.
    PERFORM guard.assert_tenant(a.company_id)
    FROM public.appointments AS a
    WHERE a.calcom_v2_booking_id = uid AND (scope IS NULL OR a.company_id = scope);
    SELECT array_agg(a.id ORDER BY a.id) INTO active_ids
    FROM public.appointments AS a
    WHERE
        a.calcom_v2_booking_id = uid
        AND (scope IS NULL OR a.company_id = scope)
        AND guard.is_active_appointment(a.status, a.deleted_at);

    IF active_ids IS NOT NULL THEN
        IF reconcile_calendar_booking.calendar_status = 'booked' THEN
            -- The calendar's time wins where it gives one: it is what the customer was told.
            RETURN QUERY
            WITH moved AS (
                UPDATE public.appointments AS a
                SET
                    starts_at = coalesce(reconcile_calendar_booking.starts_at, a.starts_at),
                    ends_at = coalesce(reconcile_calendar_booking.ends_at, a.ends_at),
                    updated_at = guard.to_app_time(now(), a.updated_at, guard.app_time_zone())
                FROM public.appointments AS was
                WHERE
                    a.id = ANY (active_ids)
                    AND was.id = a.id
                    AND (
                        a.starts_at IS DISTINCT FROM coalesce(reconcile_calendar_booking.starts_at, a.starts_at)
                        OR a.ends_at IS DISTINCT FROM coalesce(reconcile_calendar_booking.ends_at, a.ends_at)
                    )
                RETURNING a.id, a.call_id, a.company_id, was.starts_at AS old_starts_at,
                    was.ends_at AS old_ends_at, a.starts_at, a.ends_at
            ),

            audited AS (
                INSERT INTO guard.correction_audit (
                    rule_id, company_id, entity_type, entity_id, before, after, reason, actor
                )
                SELECT
                    'I7_booking_failures', m.company_id, 'appointment', m.id,
                    jsonb_build_object('starts_at', m.old_starts_at, 'ends_at', m.old_ends_at),
                    jsonb_build_object('starts_at', m.starts_at, 'ends_at', m.ends_at),
                    'calendar reconciliation: rescheduled in the calendar (booking ' || uid || ')',
                    session_user
                FROM moved AS m
            )

            SELECT
                'rescheduled'::text, m.id, m.call_id, m.company_id, NULL::bigint, NULL::bigint,
                NULL::text, NULL::bigint, TRUE
            FROM moved AS m
            ORDER BY m.id;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'in_sync'::text, active_ids[1], NULL::bigint, NULL::bigint, NULL::bigint,
                    NULL::bigint, NULL::text, NULL::bigint, FALSE;
            END IF;
            RETURN;
        END IF;
        -- Cancelled in the calendar (a person in its UI, the customer, a Cal.com webhook that
        -- never reached the application): the appointment is cancelled, never deleted.
        UPDATE public.appointments AS a
        SET status = 'cancelled', updated_at = guard.to_app_time(now(), a.updated_at, guard.app_time_zone())
        WHERE a.id = ANY (active_ids);
        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason, actor)
        SELECT
            'I7_booking_failures', a.company_id, 'appointment', a.id,
            jsonb_build_object('status', 'active'), jsonb_build_object('status', 'cancelled'),
            'calendar reconciliation: cancelled in the calendar (booking ' || uid || ')',
            session_user
        FROM public.appointments AS a
        WHERE a.id = ANY (active_ids);
        RETURN QUERY
        SELECT
            'cancelled'::text, a.id, a.call_id, a.company_id, NULL::bigint, NULL::bigint, NULL::text,
            NULL::bigint, TRUE
        FROM public.appointments AS a
        WHERE a.id = ANY (active_ids)
        ORDER BY a.id;
        RETURN;
    END IF;

    IF reconcile_calendar_booking.calendar_status = 'cancelled' THEN
        RETURN QUERY SELECT 'in_sync'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::text, NULL::bigint, FALSE;
        RETURN;
    END IF;

    -- Booked in the calendar, not active in the database.
    SELECT a.id, a.call_id, a.company_id INTO inactive
    FROM public.appointments AS a
    WHERE a.calcom_v2_booking_id = uid AND (scope IS NULL OR a.company_id = scope)
    ORDER BY a.id DESC
    LIMIT 1;
    IF FOUND THEN
        -- The database cancelled (or deleted) it and the calendar still has it: which side is
        -- right is a person's call, not ours.
        problem := 'cancelled_in_database';
        target_call := inactive.call_id;
        scope := inactive.company_id;
    ELSE
        -- (no key: no row, and attempt holds NULLs)
        SELECT b.id, b.company_id, b.call_id, b.service_id, b.state, b.created_at, b.idempotency_key INTO attempt
        FROM guard.booking_attempts AS b
        WHERE b.idempotency_key = reconcile_calendar_booking.idempotency_key
        FOR UPDATE;
        IF attempt.id IS NOT NULL THEN
            PERFORM guard.assert_tenant(attempt.company_id);
            IF reconcile_calendar_booking.call_hint IS NOT NULL
                AND reconcile_calendar_booking.call_hint <> attempt.call_id THEN
                RAISE EXCEPTION 'booking % names call % but its idempotency key is an attempt of call %',
                    uid, reconcile_calendar_booking.call_hint, attempt.call_id
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF attempt.state = 'calling' AND attempt.created_at >= now() - make_interval(
                secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
            ) THEN
                RETURN QUERY SELECT 'in_flight'::text, NULL::bigint, attempt.call_id, attempt.company_id,
                    NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, FALSE;
                RETURN;
            END IF;
            target_call := attempt.call_id;
            service := attempt.service_id;
        END IF;
        target_call := coalesce(target_call, reconcile_calendar_booking.call_hint);
        IF target_call IS NULL THEN
            SELECT min(c.id) INTO target_call
            FROM public.calls AS c
            WHERE c.booking_id = uid AND (scope IS NULL OR c.company_id = scope)
            HAVING count(*) = 1;
        END IF;
        IF target_call IS NOT NULL THEN
            SELECT c.id, c.company_id, c.customer_id INTO the_call
            FROM public.calls AS c WHERE c.id = target_call
            FOR UPDATE;
            IF NOT FOUND THEN
                -- a call the calendar names and this database never had (its id is in details)
                problem := 'call_not_found';
                target_call := NULL;
            ELSE
                PERFORM guard.assert_tenant(the_call.company_id);
                IF scope IS NOT NULL AND the_call.company_id <> scope THEN
                    RAISE EXCEPTION 'booking % names call % of another company than the calendar''s (%)',
                        uid, the_call.id, scope
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                scope := the_call.company_id;
                SELECT min(a.id) INTO other_active
                FROM public.appointments AS a
                WHERE
                    a.call_id = the_call.id
                    AND a.company_id = the_call.company_id
                    AND guard.is_active_appointment(a.status, a.deleted_at);
                IF other_active IS NOT NULL THEN
                    problem := 'call_already_booked';
                END IF;
            END IF;
        ELSE
            problem := 'call_unknown';
        END IF;
    END IF;

    IF problem IS NULL THEN
        -- The caller records it in this transaction, as the booking path does (it inserts the
        -- appointment with the application's rights: the owner role never creates one), with the
        -- service of the booking's attempt, else of the call's newest attempt, and closes an
        -- unsettled attempt of the key with guard.complete_booking_attempt. The locks taken here
        -- hold until then.
        service := coalesce(service, (
            SELECT b.service_id FROM guard.booking_attempts AS b
            WHERE b.call_id = the_call.id
            ORDER BY b.created_at DESC, b.id DESC
            LIMIT 1
        ));
        RETURN QUERY SELECT
            'record'::text, NULL::bigint, the_call.id, the_call.company_id, the_call.customer_id,
            service, CASE WHEN attempt.state IN ('calling', 'unknown') THEN attempt.idempotency_key END,
            NULL::bigint, FALSE;
        RETURN;
    END IF;

    -- Queued for a person, once per uid: an item of any status counts (a closed one was decided).
    SELECT r.id INTO item
    FROM guard.review_items AS r
    WHERE r.reason = 'calendar_only_booking' AND (r.details ->> 'booking_uid') = uid
    ORDER BY r.id DESC
    LIMIT 1;
    IF item IS NOT NULL THEN
        RETURN QUERY SELECT 'queued'::text, inactive.id, target_call, scope, NULL::bigint, NULL::bigint,
            NULL::text, item, FALSE;
        RETURN;
    END IF;
    -- ids and times only: what the calendar's details hold (attendees, phone numbers) stays there
    item_details := jsonb_strip_nulls(jsonb_build_object(
        'booking_uid', uid,
        'problem', problem,
        'starts_at', reconcile_calendar_booking.starts_at,
        'ends_at', reconcile_calendar_booking.ends_at,
        'idempotency_key', reconcile_calendar_booking.idempotency_key,
        'calendar_call_id', reconcile_calendar_booking.call_hint,
        'appointment_id', coalesce(inactive.id, other_active)
    ));
    item := guard.enqueue_review(
        coalesce(scope, guard.current_company()), target_call, inactive.id, 'calendar_only_booking',
        item_details
    );
    -- A call has one open item per reason: a second calendar-only booking of the same call is
    -- named by the open item of the first (enqueue_review returns it), and writes nothing.
    RETURN QUERY
    SELECT
        'queued'::text, inactive.id, target_call, r.company_id, NULL::bigint, NULL::bigint, NULL::text,
        item, (r.details ->> 'booking_uid') IS NOT DISTINCT FROM uid
    FROM guard.review_items AS r
    WHERE r.id = item;
END;
$$;
