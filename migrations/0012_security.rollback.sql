-- Undo 0012_security: policies and row-level security off, the SECURITY DEFINER functions back
-- to their 0011 definitions, every grant to the Booking Guard roles revoked, PUBLIC's EXECUTE on
-- the guard functions restored, and every guard object handed back to the user rolling back.
-- The roles themselves stay: roles belong to the cluster, and another database may use them
-- (drop them by hand with DROP ROLE when no database does).

DROP POLICY owner_maintenance ON guard.alerts;

DROP POLICY tenant_isolation ON guard.alerts;

ALTER TABLE guard.alerts NO FORCE ROW LEVEL SECURITY;

ALTER TABLE guard.alerts DISABLE ROW LEVEL SECURITY;

DROP POLICY owner_maintenance ON guard.review_items;

DROP POLICY tenant_isolation ON guard.review_items;

ALTER TABLE guard.review_items NO FORCE ROW LEVEL SECURITY;

ALTER TABLE guard.review_items DISABLE ROW LEVEL SECURITY;

DROP POLICY owner_maintenance ON guard.daily_reports;

DROP POLICY tenant_isolation ON guard.daily_reports;

ALTER TABLE guard.daily_reports NO FORCE ROW LEVEL SECURITY;

ALTER TABLE guard.daily_reports DISABLE ROW LEVEL SECURITY;

DROP POLICY owner_maintenance ON guard.correction_audit;

DROP POLICY tenant_isolation ON guard.correction_audit;

ALTER TABLE guard.correction_audit NO FORCE ROW LEVEL SECURITY;

ALTER TABLE guard.correction_audit DISABLE ROW LEVEL SECURITY;

DROP POLICY owner_maintenance ON guard.validation_metrics;

DROP POLICY tenant_isolation ON guard.validation_metrics;

ALTER TABLE guard.validation_metrics NO FORCE ROW LEVEL SECURITY;

ALTER TABLE guard.validation_metrics DISABLE ROW LEVEL SECURITY;

DROP POLICY guard_tenant_only ON public.calls;

DROP POLICY guard_all_rows ON public.calls;

ALTER TABLE public.calls DISABLE ROW LEVEL SECURITY;

DROP POLICY guard_tenant_only ON public.appointments;

DROP POLICY guard_all_rows ON public.appointments;

ALTER TABLE public.appointments DISABLE ROW LEVEL SECURITY;

DROP VIEW guard.calls_report;

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
CREATE OR REPLACE FUNCTION guard.refresh_call_flags(
    call_ids bigint[],
    lost_from bigint[] DEFAULT '{}',
    audit_reason text DEFAULT NULL,
    check_only boolean DEFAULT FALSE
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    differing integer;
BEGIN
    -- Lock the calls first, in id order, and look at their appointments in the next statement:
    -- under READ COMMITTED its snapshot sees every appointment committed by a writer we waited
    -- for, so concurrent writers cannot leave a call with flags derived from a stale view
    -- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking.
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    WITH current_state AS (
        SELECT
            c.id,
            c.company_id,
            c.appointment_made,
            c.appointment_link_status,
            c.appointment_linked_at,
            c.session_outcome,
            c.booking_failed,
            c.booking_confirmed,
            c.id = ANY (lost_from) AS lost_one,
            EXISTS (
                SELECT
                FROM public.appointments AS a
                WHERE
                    a.call_id = c.id
                    AND a.company_id = c.company_id
                    AND a.deleted_at IS NULL
                    AND a.status IS DISTINCT FROM 'cancelled'
            ) AS has_active
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids)
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
            rule_id, company_id, entity_type, entity_id, before, after, reason
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
            audit_reason
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

-- I3: the application wrote booking flags on these calls. In the rule's correct mode, flags that
-- contradict the appointments are corrected (audited, one alert per company); in reject mode the
-- statement fails. A disabled rule lets the write stand (detection still reports it).
CREATE OR REPLACE FUNCTION guard.correct_call_writes(call_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    rule_mode text;
    contradicting integer;
BEGIN
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF rule_mode = 'reject' THEN
        contradicting := guard.refresh_call_flags(call_ids, check_only => TRUE);
        IF contradicting > 0 THEN
            RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments', contradicting
                USING
                    ERRCODE = 'check_violation',
                    HINT = 'appointment_made and the appointment link are derived from the '
                    || 'appointments table (rule I3_appointment_flags is in reject mode)';
        END IF;
        RETURN 0;
    END IF;
    RETURN guard.refresh_call_flags(call_ids, audit_reason => reason);
END;
$$;

-- Record one post-booking validation and its latency: the one place guard.validation_metrics is
-- written (validate_booking, and the booking path after it rolled a failed booking back, which
-- took the first record with it).
CREATE OR REPLACE FUNCTION guard.record_validation(
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
CREATE OR REPLACE FUNCTION guard.validate_booking(call_id bigint, appointment_id bigint, booking_uid text)
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

-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed and for manual
-- processing, raise an alert and queue a review item. The flags are left alone when the call
-- still has an active appointment (an earlier booking stands); the alert and review item are
-- raised either way. reason is the review reason (validation_failure,
-- calendar_booking_failure, customer_creation_failure, service_not_found, other); context is
-- what a reviewer needs (no phone numbers). Returns the review item's id.
CREATE OR REPLACE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}')
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

-- Every rule for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
CREATE OR REPLACE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(NULL, check_call.call_id) AS d;
$$;

-- Privileges of the Booking Guard roles (a table's REVOKE takes its column privileges too), then
-- PUBLIC's default EXECUTE, then ownership back to the user rolling back.
DO $$
DECLARE
    grantee text;
    obj record;
BEGIN
    FOREACH grantee IN ARRAY ARRAY[
        guard.role('application'), guard.role('reporting'), guard.role('reviewer')
    ] LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA guard FROM %I', grantee);
        EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA guard FROM %I', grantee);
        EXECUTE format('REVOKE ALL ON SCHEMA guard FROM %I', grantee);
        EXECUTE format(
            'REVOKE ALL ON TABLE public.companies, public.customers, public.services, public.calls,'
            ' public.appointments FROM %I',
            grantee
        );
    END LOOP;
    EXECUTE format(
        'REVOKE ALL ON TABLE public.companies, public.calls, public.appointments FROM %I',
        guard.role('owner')
    );
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA guard TO PUBLIC;
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT EXECUTE ON FUNCTIONS TO PUBLIC', guard.role('owner')
    );
    FOR obj IN
        SELECT
            CASE c.relkind
                WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE'
                WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE'
            END AS object_type,
            c.oid::regclass::text AS object_name
        FROM pg_catalog.pg_class AS c
        WHERE
            c.relnamespace = 'guard'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND NOT EXISTS (
                SELECT FROM pg_catalog.pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            )
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'guard'::regnamespace
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text
        FROM pg_catalog.pg_type AS t
        LEFT JOIN pg_catalog.pg_class AS r ON t.typrelid = r.oid
        WHERE t.typnamespace = 'guard'::regnamespace AND t.typelem = 0 AND (t.typrelid = 0 OR r.relkind = 'c')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.object_type, obj.object_name, current_user);
    END LOOP;
    EXECUTE format('ALTER SCHEMA guard OWNER TO %I', current_user);
END;
$$;

DROP FUNCTION guard.apply_grants();

DROP FUNCTION guard.mask_phone(text);

DROP FUNCTION guard.assert_tenant(bigint);

DROP FUNCTION guard.current_company();

DROP FUNCTION guard.role(text);

DROP TABLE guard.role_names;
