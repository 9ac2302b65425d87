-- 0025_active_appointment (written by `make migration`, reviewed): one definition of "an active
-- appointment" (not cancelled, not soft-deleted), guard.is_active_appointment, an SQL function the
-- planner inlines; the 12 places that wrote the condition out call it: the flag derivation and the
-- appointment triggers, the booking journal's functions, rollback_booking, the review sweep and
-- three detection views. apply_grants gives EXECUTE on it to the application and the readers (an
-- inlined function still needs it).
-- Locks:
--   view guard.check_booked_without_appointment: ACCESS EXCLUSIVE, an instant
--   view guard.check_flags_contradict_appointments: ACCESS EXCLUSIVE, an instant
--   view guard.check_orphaned_voice_appointment: ACCESS EXCLUSIVE, an instant

-- I3, I4, I6: an appointment is active unless it is cancelled or soft-deleted. The one definition
-- of "active": every statement that asks calls it.
-- LANGUAGE sql, IMMUTABLE, one expression, no SET clause, not SECURITY DEFINER: the planner
-- inlines it, so a call costs what the expression written in place costs
-- (tests/db/test_active_appointment.py proves it with EXPLAIN). deleted_at is of any type: an
-- adopted table keeps `timestamp without time zone`, and a cast to timestamptz depends on the
-- session's TimeZone, which would keep the planner from inlining an IMMUTABLE function.
CREATE OR REPLACE FUNCTION guard.is_active_appointment(status text, deleted_at anyelement)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
-- A quoted body: PostgreSQL 15 refuses polymorphic arguments with a RETURN body.
AS $$
    SELECT deleted_at IS NULL AND status IS DISTINCT FROM 'cancelled'
$$;

-- (Re)apply Booking Guard's ownership and privileges from guard.role_names: every object in
-- schema guard is handed to the owner role, PUBLIC loses EXECUTE on the guard functions, and the
-- application, reporting and reviewer roles get exactly what docs/security.md lists. Every
-- migration that creates or re-creates an object in schema guard ends with a DO block that
-- runs PERFORM guard.apply_grants(), so ownership and grants survive DROP and CREATE (CREATE OR
-- REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's own grants away
-- (guard db verify reports those). Run by the migrating user, a member of the owner role.
CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    owner_role text := guard.role('owner');
    app_role text := guard.role('application');
    reader text;
    obj record;
    -- public.calls as reporting may read it: every column Booking Guard knows but the phone numbers
    calls_columns text;
    appointments_columns text;
BEGIN
    -- Ownership: the schema and everything in it. Sequences of identity columns and row types of
    -- tables follow their table.
    IF (SELECT n.nspowner::regrole::text FROM pg_namespace AS n WHERE n.nspname = 'guard')
        IS DISTINCT FROM quote_ident(owner_role) THEN
        EXECUTE format('ALTER SCHEMA guard OWNER TO %I', owner_role);
    END IF;
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
        FROM pg_class AS c
        WHERE
            c.relnamespace = 'guard'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND c.relowner <> to_regrole(quote_ident(owner_role))
            AND NOT EXISTS (
                SELECT FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            )
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text
        FROM pg_proc AS p
        WHERE p.pronamespace = 'guard'::regnamespace AND p.proowner <> to_regrole(quote_ident(owner_role))
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text
        FROM pg_type AS t
        LEFT JOIN pg_class AS r ON t.typrelid = r.oid
        WHERE
            t.typnamespace = 'guard'::regnamespace
            AND t.typowner <> to_regrole(quote_ident(owner_role))
            AND t.typelem = 0
            AND (t.typrelid = 0 OR r.relkind = 'c')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.object_type, obj.object_name, owner_role);
    END LOOP;

    -- Nothing for PUBLIC: a function is EXECUTE-able by PUBLIC unless revoked.
    REVOKE ALL ON SCHEMA guard FROM PUBLIC;
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA guard FROM PUBLIC;
    -- Functions the owner role creates later start without PUBLIC's EXECUTE too. (A per-schema
    -- default cannot take away the global default's EXECUTE, hence no IN SCHEMA.)
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', owner_role
    );

    -- The owner role: what its SECURITY DEFINER functions, detection, reconciliation and the
    -- jobs read and correct on the application's tables.
    EXECUTE format('GRANT SELECT, UPDATE ON TABLE public.calls, public.appointments TO %I', owner_role);
    EXECUTE format('GRANT SELECT ON TABLE public.companies TO %I', owner_role);

    -- The application: its own booking tables, the settings its triggers read, and the
    -- functions it calls (directly, or through the triggers on calls and appointments).
    EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', app_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.companies, public.customers,'
        ' public.services, public.calls, public.appointments TO %I',
        app_role
    );
    EXECUTE format('GRANT SELECT ON TABLE guard.settings, guard.rules TO %I', app_role);
    FOR obj IN
        SELECT f.signature::regprocedure::text AS object_name
        FROM unnest(ARRAY[
            'guard.setting(text)',
            'guard.current_company()',
            'guard.validate_booking(bigint, bigint, text)',
            'guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)',
            'guard.rollback_booking(bigint, text, jsonb)',
            'guard.check_call(bigint)',
            -- the derived booking flags, read in place by the appointment triggers (invoker
            -- rights: they update calls as the application would)
            'guard.call_flags_to_correct(bigint[], boolean)',
            -- "active appointment", inlined into the statements that ask (an inlined function
            -- still needs EXECUTE)
            'guard.is_active_appointment(text, anyelement)',
            -- the booking journal (guard.booking_attempts), written only through these
            'guard.begin_booking_attempt(bigint, bigint)',
            'guard.complete_booking_attempt(text, bigint, text)',
            'guard.fail_booking_attempt(text, text, jsonb)',
            'guard.unsettled_booking_attempts(integer, integer)',
            -- breaker history, written behind by the application's breakers (they may not
            -- write guard.breaker_events / guard.breaker_state themselves)
            'guard.record_breaker_transitions(jsonb)'
        ]) AS f (signature)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, app_role);
    END LOOP;

    -- Reporting and reviewer: read-only, the BI views and, because those views are
    -- security_invoker, the tables behind them (row-level security limits both to the companies
    -- bound to the role, guard.tenant_bindings);
    -- never the raw phone numbers.
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO calls_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'retell_call_id', 'status', 'direction', 'customer_id',
        'customer_link_status', 'customer_link_method', 'customer_link_confidence',
        'customer_linked_at', 'session_outcome', 'appointment_made', 'appointment_link_status',
        'appointment_linked_at', 'booking_id', 'booking_details', 'booking_confirmed',
        'booking_failed', 'booking_failure_reason', 'requires_manual_processing', 'created_at',
        'updated_at'
    ]) WITH ORDINALITY AS col (name, ord);
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO appointments_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'call_id', 'customer_id', 'service_id', 'calcom_v2_booking_id',
        'source', 'status', 'starts_at', 'ends_at', 'created_at', 'updated_at', 'deleted_at'
    ]) WITH ORDINALITY AS col (name, ord);
    FOREACH reader IN ARRAY ARRAY[guard.role('reporting'), guard.role('reviewer')] LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', reader);
        FOR obj IN
            SELECT c.oid::regclass::text AS object_name
            FROM pg_class AS c
            WHERE
                c.relnamespace = 'guard'::regnamespace
                AND (
                    (c.relkind = 'v' AND c.relname LIKE 'check\_%')
                    OR c.relname IN (
                        'daily_report_view', 'kpis', 'validation_latency_daily', 'job_status',
                        'calls_report', 'alerts', 'review_items', 'daily_reports',
                        'correction_audit', 'validation_metrics', 'breaker_events', 'settings',
                        'jobs', 'job_runs',
                        -- read by the security_invoker view check_booking_outcome_unknown
                        'booking_attempts',
                        -- tenants: guard.visible_companies reads the bindings with the
                        -- reader's rights (a policy shows each role only its own)
                        'tenant_bindings'
                    )
                )
            ORDER BY 1
        LOOP
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj.object_name, reader);
        END LOOP;
        EXECUTE format('GRANT SELECT (id, name) ON TABLE public.companies TO %I', reader);
        EXECUTE format('GRANT SELECT (%s) ON TABLE public.calls TO %I', calls_columns, reader);
        EXECUTE format(
            'GRANT SELECT (%s) ON TABLE public.appointments TO %I', appointments_columns, reader
        );
        EXECUTE format(
            'GRANT EXECUTE ON FUNCTION guard.current_company(), guard.setting(text),'
            ' guard.mask_phone(text) TO %I',
            reader
        );
        -- tenants: the row-level security policies and guard.calls_report call it as the reader;
        -- the detection views call is_active_appointment (found in the catalog, like the
        -- relations above: nothing to grant before it exists)
        FOR obj IN
            SELECT p.oid::regprocedure::text AS object_name
            FROM pg_proc AS p
            WHERE
                p.pronamespace = 'guard'::regnamespace
                AND p.proname IN ('visible_companies', 'is_active_appointment')
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, reader);
        END LOOP;
    END LOOP;

    -- Reviewer: works the review queue of its companies (review_claim and review_close run with
    -- its rights, under row-level security). claimed_by and closed_by are its free-text labels;
    -- the login is recorded in claimed_by_role and closed_by_role by a trigger, not granted.
    EXECUTE format(
        'GRANT UPDATE (status, claimed_by, claimed_at, closed_by, closed_at, note, false_positive)'
        ' ON TABLE guard.review_items TO %I',
        guard.role('reviewer')
    );
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION guard.review_claim(text, integer),'
        ' guard.review_close(bigint, text, text, text, boolean) TO %I',
        guard.role('reviewer')
    );
END;
$$;

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
-- SECURITY DEFINER: the application may not write the journal itself; a session with a tenant
-- set may only book that tenant's calls.
CREATE OR REPLACE FUNCTION guard.begin_booking_attempt(call_id bigint, service_id bigint)
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

    INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key)
    VALUES (
        the_call.company_id, the_call.id, begin_booking_attempt.service_id, gen_random_uuid()::text
    )
    RETURNING 'started', id, booking_attempts.idempotency_key
    INTO outcome, attempt_id, idempotency_key;
    RETURN NEXT;
END;
$$;

-- I3, I4: the calls among call_ids whose booking flags differ from what their active appointments
-- say, with the flags they have (old_*) and the flags they should have (new_*). The one
-- definition of the derived flags: every statement that derives, corrects or checks them reads it.
--   lost  the calls just lost an active appointment (an appointment trigger says so): with none
--         left, a booked outcome becomes appointment_cancelled and the booking is no longer
--         confirmed. Deriving a call with lost = FALSE after it was derived with lost = TRUE
--         changes nothing, so a caller may pass a call in both sets, the lost set first.
--   row_id the version of the call row that was read, for the caller's UPDATE to join on (a TID
--         scan instead of a second index lookup of the same row; the caller holds the row lock).
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked
-- outcome without an appointment is left alone: it is legitimate during the grace period
-- (detection's job).
-- One SELECT, LANGUAGE sql, STABLE, no SET clause, not SECURITY DEFINER: the planner inlines it
-- into the statement that calls it, so it costs what the same SQL written in place costs.
-- OFFSET 0 keeps the inner query a subquery: without it the planner flattens it and copies the
-- EXISTS into every expression that reads has_active (14 copies, each one initialised for every
-- statement and probed per row: most of a one-row cancel's cost, bench/instructions.py).
-- `c.id = ANY (call_ids)` is an index condition (the array is sorted once and each id looked up),
-- not a filter searched per row.
CREATE OR REPLACE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost boolean)
RETURNS TABLE (
    row_id tid,
    id bigint,
    company_id bigint,
    old_made boolean,
    old_link_status text,
    old_linked_at timestamptz,
    old_outcome text,
    old_failed boolean,
    old_confirmed boolean,
    new_made boolean,
    new_link_status text,
    new_linked_at timestamptz,
    new_outcome text,
    new_failed boolean,
    new_confirmed boolean
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        d.ctid,
        d.id,
        d.company_id,
        d.appointment_made,
        d.appointment_link_status,
        d.appointment_linked_at,
        d.session_outcome,
        d.booking_failed,
        d.booking_confirmed,
        d.has_active,
        d.new_link_status,
        d.new_linked_at,
        d.new_outcome,
        d.new_failed,
        d.new_confirmed
    FROM (
        SELECT
            s.*,
            CASE
                WHEN s.has_active THEN 'linked'
                WHEN s.appointment_link_status IS NULL THEN NULL
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(s.appointment_linked_at, pg_catalog.now())
                ELSE s.appointment_linked_at
            END AS new_linked_at,
            CASE
                WHEN s.has_active THEN 'appointment_booked'
                WHEN lost AND s.session_outcome = 'appointment_booked' THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (lost AND NOT s.has_active) AS new_confirmed
        FROM (
            SELECT
                c.ctid,
                c.id,
                c.company_id,
                c.appointment_made,
                c.appointment_link_status,
                c.appointment_linked_at,
                c.session_outcome,
                c.booking_failed,
                c.booking_confirmed,
                EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = c.id
                        AND a.company_id = c.company_id
                        AND guard.is_active_appointment(a.status, a.deleted_at)
                ) AS has_active
            FROM public.calls AS c
            WHERE c.id = ANY (call_ids)
            OFFSET 0
        ) AS s
    ) AS d
    WHERE (
        d.appointment_made, d.appointment_link_status, d.appointment_linked_at,
        d.session_outcome, d.booking_failed, d.booking_confirmed
    ) IS DISTINCT FROM (
        d.has_active, d.new_link_status, d.new_linked_at,
        d.new_outcome, d.new_failed, d.new_confirmed
    );
$$;

-- I7, the booking journal and the booking path.
-- Close a booking attempt as booked, in the transaction that recorded its appointment (commit
-- both or neither). The appointment must be an active appointment of the attempt's call and
-- company carrying booking_uid. An attempt that was still calling becomes booked; one whose
-- outcome was unknown (or that is past its timeout) becomes recovered, and its review item and
-- alert are closed. An attempt that was already settled is an error (SQLSTATE 55000): its call
-- may have been rolled back and reviewed meanwhile, and the caller must treat this booking as a
-- failure to review, not as a success.
-- SECURITY DEFINER: the application may not write the journal itself; a session with a tenant
-- set may only close that tenant's attempts.
CREATE OR REPLACE FUNCTION guard.complete_booking_attempt(
    idempotency_key text, appointment_id bigint, booking_uid text
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
        booking_uid = complete_booking_attempt.booking_uid
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

-- Hourly: resolve open review items whose problem has gone by itself. A booking failure or a
-- failed validation is gone when the call has an active appointment after all; an orphaned or
-- cross-tenant appointment is gone when it is linked to a call of its own company, or is no
-- longer active. Returns the number of items resolved.
CREATE OR REPLACE FUNCTION guard.review_sweep()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    swept integer;
BEGIN
    UPDATE guard.review_items AS r
    SET
        status = 'resolved',
        closed_by = 'guard:review_sweep',
        closed_at = now(),
        note = 'the problem is gone: nothing left to do'
    WHERE
        r.status = 'open'
        AND (
            (
                r.reason IN ('calendar_booking_failure', 'validation_failure')
                AND r.call_id IS NOT NULL
                AND EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = r.call_id
                        AND a.company_id = r.company_id
                        AND guard.is_active_appointment(a.status, a.deleted_at)
                )
            )
            OR (
                r.appointment_id IS NOT NULL
                AND r.reason = 'other'
                AND EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    LEFT JOIN public.calls AS c ON a.call_id = c.id
                    WHERE
                        a.id = r.appointment_id
                        AND (
                            a.deleted_at IS NOT NULL
                            OR a.status = 'cancelled'
                            OR c.company_id = a.company_id
                        )
                )
            )
        );
    GET DIAGNOSTICS swept = ROW_COUNT;
    RETURN swept;
END;
$$;

-- I7, the booking journal and the booking path.
-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed and for manual
-- processing, raise an alert and queue a review item. The flags are left alone when the call
-- still has an active appointment (an earlier booking stands); the alert and review item are
-- raised either way. reason is the review reason (validation_failure,
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

-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: every call of a deleted active
-- appointment lost one, and keeps its flags only while another active one remains.
-- Lock the calls first, in id order, and look at their appointments in the next statement: under
-- READ COMMITTED its snapshot sees every appointment committed by a writer we waited for, so
-- concurrent writers cannot leave a call with flags derived from a stale view
-- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking. The same
-- two statements end guard.sync_flags_after_appointment_update.
-- SECURITY INVOKER: the writer may update calls itself (the application may), so no definer call
-- and no tenant lookup on this everyday path (a nested SECURITY DEFINER call with its SET clauses
-- cost a one-row delete about 90k instructions, bench/instructions.py).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
-- The lock and the UPDATE take the call ids as a parameter: custom plans would be planned again
-- on every firing, and PostgreSQL kept choosing them (bench/instructions.py).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    lost bigint[];
BEGIN
    lost := ARRAY(
        SELECT o.call_id
        FROM old_rows AS o
        WHERE o.call_id IS NOT NULL AND guard.is_active_appointment(o.status, o.deleted_at)
    );
    IF cardinality(lost) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM FROM public.calls AS c WHERE c.id = ANY (lost) ORDER BY c.id FOR NO KEY UPDATE;
    -- A correction that leaves a booking claim without an appointment standing (a phantom:
    -- outcome booked, made = false) keeps the call's updated_at, as refresh_call_flags does.
    UPDATE public.calls AS c
    SET
        appointment_made = f.new_made,
        appointment_link_status = f.new_link_status,
        appointment_linked_at = f.new_linked_at,
        session_outcome = f.new_outcome,
        booking_failed = f.new_failed,
        booking_confirmed = f.new_confirmed,
        updated_at = CASE
            WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
            ELSE now()
        END
    FROM guard.call_flags_to_correct(lost, TRUE) AS f
    WHERE c.ctid = f.row_id;
    RETURN NULL;
END;
$$;

-- I3, AFTER INSERT ... FOR EACH STATEMENT on appointments: calls that received an active
-- appointment are booked. The answer does not depend on anything else, so it is one set-based
-- UPDATE of those calls (the statement an application would write by hand), unconditional on
-- purpose: its row lock, and READ COMMITTED's re-check of the latest row version, serialise it
-- with a concurrent writer that is unbooking the same call (tests/db/test_concurrency.py).
-- Skipping calls that already look booked would decide from a possibly stale snapshot.
-- One statement, not a SELECT into an array and then an UPDATE: a single-row insert pays for
-- one executor run instead of two (bench/triggers.py). `= ANY (ARRAY(subquery))` keeps the
-- cached plan an index scan of calls whatever the size of the statement that planned it; a
-- join with the transition table would be planned for the first firing's row count.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE public.calls AS c
    SET
        appointment_made = TRUE,
        appointment_link_status = 'linked',
        appointment_linked_at = coalesce(c.appointment_linked_at, now()),
        session_outcome = 'appointment_booked',
        booking_failed = FALSE,
        updated_at = now()
    WHERE c.id = ANY (ARRAY(
        SELECT n.call_id
        FROM new_rows AS n
        WHERE n.call_id IS NOT NULL AND guard.is_active_appointment(n.status, n.deleted_at)
    ));
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: the calls on both sides of every
-- appointment whose call, company or activeness (status, soft delete) changed get their flags
-- derived again.
-- The changed rows are found by grouping both transition tables together on what matters (the
-- old version counts -1, the new one +1): an unchanged row's two versions cancel out, a changed
-- row leaves its old side (-1) and its new side (+1). One scan of each table and one hash
-- aggregate, never a join of the transition tables, whose plan, cached from a one-row firing,
-- made a big statement quadratic. A call with an active old side lost an appointment; every
-- touched call is derived (a call may gain one), the lost ones first: deriving a call again
-- without the lost mark changes nothing (guard.call_flags_to_correct).
-- Then the lock and the derivation of guard.sync_flags_after_appointment_delete (see there why
-- in two statements, in this order, with invoker rights).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    touched bigint[];
    lost bigint[];
BEGIN
    SELECT
        coalesce(array_agg(DISTINCT v.call_id), '{}'),
        coalesce(array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}')
    INTO touched, lost
    FROM (
        SELECT u.call_id, u.active, sum(u.side) AS side
        FROM (
            SELECT
                o.id,
                o.call_id,
                o.company_id,
                guard.is_active_appointment(o.status, o.deleted_at) AS active,
                -1 AS side
            FROM old_rows AS o
            UNION ALL
            SELECT
                n.id,
                n.call_id,
                n.company_id,
                guard.is_active_appointment(n.status, n.deleted_at) AS active,
                1 AS side
            FROM new_rows AS n
        ) AS u
        GROUP BY u.id, u.call_id, u.company_id, u.active
        HAVING sum(u.side) <> 0
    ) AS v
    WHERE v.call_id IS NOT NULL;
    IF cardinality(touched) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM FROM public.calls AS c WHERE c.id = ANY (touched) ORDER BY c.id FOR NO KEY UPDATE;
    IF cardinality(lost) > 0 THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(lost, TRUE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    -- lost is a subset of touched: equal sizes mean nothing is left to derive.
    IF cardinality(touched) > cardinality(lost) THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(touched, FALSE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    RETURN NULL;
END;
$$;

-- I4, rule booked_without_appointment: a phantom booking. The call claims a booking (made, or
-- outcome appointment_booked) but no active appointment exists, and the claim is older than the
-- grace period. The claim's age is taken from the call's last write (updated_at), because a call
-- may book minutes after it started.
CREATE OR REPLACE VIEW guard.check_booked_without_appointment WITH (security_invoker = TRUE) AS
SELECT
    'booked_without_appointment'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'critical'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'session_outcome', c.session_outcome,
        'booking_id', c.booking_id,
        'claimed_seconds_ago', floor(extract(EPOCH FROM now() - greatest(c.created_at, c.updated_at)))
    ) AS detail
FROM public.calls AS c
WHERE
    (c.appointment_made OR c.session_outcome = 'appointment_booked')
    AND greatest(c.created_at, c.updated_at) < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    )
    AND NOT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND guard.is_active_appointment(a.status, a.deleted_at)
    );

-- I3, rule flags_contradict_appointments: a call with an active appointment whose flags do not
-- say so (not made, not linked, another outcome, or marked failed).
CREATE OR REPLACE VIEW guard.check_flags_contradict_appointments WITH (security_invoker = TRUE) AS
SELECT
    'flags_contradict_appointments'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'appointment_link_status', c.appointment_link_status,
        'session_outcome', c.session_outcome,
        'booking_failed', c.booking_failed
    ) AS detail
FROM public.calls AS c
WHERE
    EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND guard.is_active_appointment(a.status, a.deleted_at)
    )
    AND NOT coalesce(
        c.appointment_made
        AND c.appointment_link_status = 'linked'
        AND c.session_outcome = 'appointment_booked'
        AND NOT c.booking_failed,
        FALSE
    );

-- I6, rule orphaned_voice_appointment: an active appointment made by the voice agent
-- (source retell_webhook) that is linked to no call once the grace period is over. The detail
-- counts the calls carrying its booking uid, in its company and in others: what reconcile needs
-- to decide between linking it and queueing it for a person.
CREATE OR REPLACE VIEW guard.check_orphaned_voice_appointment WITH (security_invoker = TRUE) AS
SELECT
    'orphaned_voice_appointment'::text AS rule_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    NULL::bigint AS call_id,
    'high'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object(
        'booking_uid', a.calcom_v2_booking_id,
        'calls_with_uid_same_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        ),
        'calls_with_uid_other_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id <> a.company_id
        )
    ) AS detail
FROM public.appointments AS a
WHERE
    a.source = 'retell_webhook'
    AND a.call_id IS NULL
    AND guard.is_active_appointment(a.status, a.deleted_at)
    AND a.created_at < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    );

-- Ownership and grants of the new objects.
SELECT guard.apply_grants();
