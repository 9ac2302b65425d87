-- I7, the booking journal and the booking path.
-- The other half of the calendar's reconciliation (guard.calendar.reconcile_calendar): the active
-- appointments of the window that the calendar did not list, each queued for a person as review
-- item missing_in_calendar. Nothing is cancelled or deleted: an appointment the calendar lost may
-- be the calendar's mistake, or the client's (a wrong account, a page it did not fetch).
-- Compared: active appointments that carry a calendar uid (one without a uid was never booked in
-- the calendar: a manual appointment), that start in [since, until), of company_id (NULL: of
-- every company the session may act on), created before listed_at (the moment the calendar was
-- asked: a booking recorded after that is missing from the answer, not from the calendar), and
-- whose uid is not among calendar_uids (every uid the calendar listed for the window, whatever
-- its status: one listed as cancelled is the other half's business).
-- One row per such appointment: its review item, and queued = TRUE when this call opened it. An
-- item of any status for the same uid counts (a closed one was decided), so a second call with
-- the same calendar answer writes nothing. More than max_items such appointments is refused with
-- one error and nothing is queued: a calendar client that answers with nothing (an expired key,
-- another account) must not fill the review queue with the whole window.
-- A NULL argument (but company_id), since >= until, or a negative max_items is refused with one
-- error. Only rows guard.assert_tenant would let the session touch are compared (the company it
-- selected, the companies its login is bound to), as guard.unsettled_booking_attempts lists them.
-- SECURITY DEFINER: the application may not write review items itself.
CREATE OR REPLACE FUNCTION guard.queue_missing_in_calendar(
    company_id bigint,
    since timestamptz,
    until timestamptz,
    listed_at timestamptz,
    calendar_uids text[],
    max_items integer DEFAULT 100
)
RETURNS TABLE (appointment_id bigint, call_id bigint, review_item_id bigint, queued boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    login_companies bigint[] := guard.login_companies();
    missing record;
    missing_ids bigint[];
    found_count integer;
    item bigint;
BEGIN
    IF queue_missing_in_calendar.since IS NULL OR queue_missing_in_calendar.until IS NULL
        OR queue_missing_in_calendar.listed_at IS NULL OR queue_missing_in_calendar.calendar_uids IS NULL
        OR queue_missing_in_calendar.max_items IS NULL THEN
        RAISE EXCEPTION 'queue_missing_in_calendar needs since, until, listed_at, the calendar''s uids and max_items'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF queue_missing_in_calendar.since >= queue_missing_in_calendar.until THEN
        RAISE EXCEPTION 'queue_missing_in_calendar needs since before until'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF queue_missing_in_calendar.max_items < 0 THEN
        RAISE EXCEPTION 'queue_missing_in_calendar needs max_items >= 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF queue_missing_in_calendar.company_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM public.companies AS co WHERE co.id = queue_missing_in_calendar.company_id) THEN
            RAISE EXCEPTION 'company % does not exist', queue_missing_in_calendar.company_id
                USING ERRCODE = 'no_data_found';
        END IF;
        PERFORM guard.assert_tenant(queue_missing_in_calendar.company_id);
    END IF;

    -- (the uids as a set: an anti join, not a scan of the array per appointment)
    SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}') INTO missing_ids
    FROM public.appointments AS a
    WHERE
        a.calcom_v2_booking_id IS NOT NULL
        AND a.starts_at >= queue_missing_in_calendar.since
        AND a.starts_at < queue_missing_in_calendar.until
        AND a.created_at < queue_missing_in_calendar.listed_at
        AND guard.is_active_appointment(a.status, a.deleted_at)
        AND (queue_missing_in_calendar.company_id IS NULL OR a.company_id = queue_missing_in_calendar.company_id)
        AND (guard.current_company() IS NULL OR a.company_id = guard.current_company())
        AND (login_companies IS NULL OR a.company_id = ANY (login_companies))
        AND NOT EXISTS (
            SELECT FROM unnest(queue_missing_in_calendar.calendar_uids) AS listed (uid)
            WHERE listed.uid = a.calcom_v2_booking_id
        );
    found_count := cardinality(missing_ids);
    IF found_count > queue_missing_in_calendar.max_items THEN
        RAISE EXCEPTION '% active appointments of the window are missing from the calendar''s answer, more than max_items (%): nothing queued',
            found_count, queue_missing_in_calendar.max_items
            USING
                ERRCODE = 'program_limit_exceeded',
                HINT = 'check that the calendar client lists every booking of the window (its account, its pages), or raise max_items';
    END IF;

    FOR missing IN
        SELECT a.id, a.company_id, a.call_id, a.calcom_v2_booking_id AS uid
        FROM public.appointments AS a
        WHERE a.id = ANY (missing_ids)
        ORDER BY a.id
    LOOP
        SELECT r.id INTO item
        FROM guard.review_items AS r
        WHERE r.reason = 'missing_in_calendar' AND (r.details ->> 'booking_uid') = missing.uid
        ORDER BY r.id DESC
        LIMIT 1;
        IF item IS NOT NULL THEN
            RETURN QUERY SELECT missing.id, missing.call_id, item, FALSE;
            CONTINUE;
        END IF;
        item := guard.enqueue_review(
            missing.company_id, missing.call_id, missing.id, 'missing_in_calendar',
            jsonb_build_object(
                'booking_uid', missing.uid,
                'problem', 'active in the database, absent from the calendar',
                'window_since', queue_missing_in_calendar.since,
                'window_until', queue_missing_in_calendar.until
            )
        );
        -- (a call has one open item per reason: a second missing appointment of the same call
        -- is named by the first one's item)
        RETURN QUERY
        SELECT missing.id, missing.call_id, item, (r.details ->> 'booking_uid') IS NOT DISTINCT FROM missing.uid
        FROM guard.review_items AS r
        WHERE r.id = item;
    END LOOP;
END;
$$;
