-- Rollback of 0025_active_appointment: the definitions the migrations before it built.

CREATE OR REPLACE VIEW guard.check_orphaned_voice_appointment WITH (security_invoker = TRUE) AS
SELECT
    'orphaned_voice_appointment'::text AS rule_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    NULL::bigint AS call_id,
    'high'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object('booking_uid', a.calcom_v2_booking_id, 'calls_with_uid_same_company', (
        SELECT count(*) AS count
        FROM public.calls AS c
        WHERE ((c.booking_id = a.calcom_v2_booking_id) AND (c.company_id = a.company_id))), 'calls_with_uid_other_company', (
        SELECT count(*) AS count
        FROM public.calls AS c
        WHERE ((c.booking_id = a.calcom_v2_booking_id) AND (c.company_id <> a.company_id))
    )) AS detail
FROM public.appointments AS a
WHERE ((a.source = 'retell_webhook'::text) AND (a.call_id IS NULL) AND (a.deleted_at IS NULL) AND (a.status IS DISTINCT FROM 'cancelled'::text) AND (a.created_at < (now() - make_interval(secs => ((
    SELECT ((s.value #>> '{}'::text[]))::integer AS int4
    FROM guard.settings AS s
    WHERE (s.key = 'grace_period_seconds'::text)
))::double precision))));

CREATE OR REPLACE VIEW guard.check_flags_contradict_appointments WITH (security_invoker = TRUE) AS
SELECT
    'flags_contradict_appointments'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object('appointment_made', c.appointment_made, 'appointment_link_status', c.appointment_link_status, 'session_outcome', c.session_outcome, 'booking_failed', c.booking_failed) AS detail
FROM public.calls AS c
WHERE ((EXISTS (
    SELECT
    FROM public.appointments AS a
    WHERE ((a.call_id = c.id) AND (a.company_id = c.company_id) AND (a.deleted_at IS NULL) AND (a.status IS DISTINCT FROM 'cancelled'::text))
)) AND (NOT coalesce((c.appointment_made AND (c.appointment_link_status = 'linked'::text) AND (c.session_outcome = 'appointment_booked'::text) AND (NOT c.booking_failed)), FALSE
)));

CREATE OR REPLACE VIEW guard.check_booked_without_appointment WITH (security_invoker = TRUE) AS
SELECT
    'booked_without_appointment'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'critical'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object('appointment_made', c.appointment_made, 'session_outcome', c.session_outcome, 'booking_id', c.booking_id, 'claimed_seconds_ago', floor(extract(EPOCH FROM (now() - greatest(c.created_at, c.updated_at))))) AS detail
FROM public.calls AS c
WHERE ((c.appointment_made OR (c.session_outcome = 'appointment_booked'::text)) AND (greatest(c.created_at, c.updated_at) < (now() - make_interval(secs => ((
    SELECT ((s.value #>> '{}'::text[]))::integer AS int4
    FROM guard.settings AS s
    WHERE (s.key = 'grace_period_seconds'::text)
))::double precision))) AND (NOT (EXISTS (SELECT
FROM public.appointments AS a
WHERE ((a.call_id = c.id) AND (a.company_id = c.company_id) AND (a.deleted_at IS NULL) AND (a.status IS DISTINCT FROM 'cancelled'::text))))));

CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
                (o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled') AS active,
                -1 AS side
            FROM old_rows AS o
            UNION ALL
            SELECT
                n.id,
                n.call_id,
                n.company_id,
                (n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled') AS active,
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
$function$;

CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
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
        WHERE n.call_id IS NOT NULL AND n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled'
    ));
    RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    lost bigint[];
BEGIN
    lost := ARRAY(
        SELECT o.call_id
        FROM old_rows AS o
        WHERE o.call_id IS NOT NULL AND o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled'
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
$function$;

CREATE OR REPLACE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}'::jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION guard.review_sweep()
RETURNS integer
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
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
                        AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
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
$function$;

CREATE OR REPLACE FUNCTION guard.complete_booking_attempt(idempotency_key text, appointment_id bigint, booking_uid text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
            AND a.deleted_at IS NULL
            AND a.status IS DISTINCT FROM 'cancelled'
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
$function$;

CREATE OR REPLACE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost boolean)
RETURNS TABLE (row_id tid, id bigint, company_id bigint, old_made boolean, old_link_status text, old_linked_at timestamp with time zone, old_outcome text, old_failed boolean, old_confirmed boolean, new_made boolean, new_link_status text, new_linked_at timestamp with time zone, new_outcome text, new_failed boolean, new_confirmed boolean)
LANGUAGE sql
STABLE
AS $function$
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
                        AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
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
$function$;

CREATE OR REPLACE FUNCTION guard.begin_booking_attempt(call_id bigint, service_id bigint)
RETURNS TABLE (outcome text, attempt_id bigint, idempotency_key text, appointment_id bigint, booking_uid text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
        AND a.deleted_at IS NULL
        AND a.status IS DISTINCT FROM 'cancelled'
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
$function$;

CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
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
        -- tenants: the row-level security policies and guard.calls_report call it as the reader
        -- (found in the catalog, like the relations above: nothing to grant before it exists)
        FOR obj IN
            SELECT p.oid::regprocedure::text AS object_name
            FROM pg_proc AS p
            WHERE p.pronamespace = 'guard'::regnamespace AND p.proname = 'visible_companies'
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
$function$;

DROP FUNCTION guard.is_active_appointment(status text, deleted_at anyelement);
