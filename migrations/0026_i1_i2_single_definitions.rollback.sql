-- Rollback of 0026_i1_i2_single_definitions: the definitions the migrations before it built.

CREATE OR REPLACE FUNCTION guard.reconcile_call_batch(from_id bigint, to_id bigint)
RETURNS TABLE (rule_name text, corrected integer)
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET jit TO 'off'
AS $function$
DECLARE
    fixable_calls bigint[];
    directions_fixed integer;
    links_fixed integer;
    undecidable_rows integer;
BEGIN
    WITH batch AS (
        SELECT
            c.id,
            c.company_id,
            c.direction,
            c.customer_id,
            c.customer_link_status,
            c.customer_link_method,
            c.customer_link_confidence,
            c.customer_linked_at,
            (
                c.direction IS NOT NULL
                AND coalesce(nullif(lower(btrim(c.direction)), ''), 'inbound')
                NOT IN ('inbound', 'outbound')
            )
            OR coalesce(c.customer_link_confidence NOT BETWEEN 0 AND 100, FALSE) AS undecidable,
            c.direction IS NULL OR c.direction IS DISTINCT FROM lower(btrim(c.direction))
            AS direction_wrong,
            NOT coalesce(
                CASE
                    WHEN c.customer_id IS NOT NULL
                        THEN
                            c.customer_link_status = 'linked'
                            AND c.customer_linked_at IS NOT NULL
                            AND c.customer_link_method IS NOT NULL
                            AND c.customer_link_confidence IS NOT NULL
                    ELSE c.customer_link_status IN ('unlinked', 'anonymous')
                END,
                FALSE
            ) AS link_wrong
        FROM public.calls AS c
        WHERE c.id >= from_id AND c.id < to_id
    ),

    to_fix AS (
        SELECT b.* FROM batch AS b
        WHERE NOT b.undecidable AND (b.direction_wrong OR b.link_wrong)
    ),

    -- The normalisers do the work: SET col = col fires the BEFORE ROW triggers of I1 and I2.
    fixed AS (
        UPDATE public.calls AS c
        SET direction = c.direction, customer_id = c.customer_id
        FROM to_fix AS t
        WHERE c.id = t.id
        RETURNING
            c.id,
            c.direction,
            c.customer_link_status,
            c.customer_link_method,
            c.customer_link_confidence,
            c.customer_linked_at
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason
        )
        SELECT
            'I1_call_direction',
            t.company_id,
            'call',
            t.id,
            jsonb_build_object('direction', t.direction),
            jsonb_build_object('direction', f.direction),
            'legacy row: missing or unnormalised direction'
        FROM to_fix AS t INNER JOIN fixed AS f ON t.id = f.id
        WHERE t.direction_wrong
        UNION ALL
        SELECT
            'I2_customer_link',
            t.company_id,
            'call',
            t.id,
            jsonb_build_object(
                'customer_id', t.customer_id,
                'customer_link_status', t.customer_link_status,
                'customer_link_method', t.customer_link_method,
                'customer_link_confidence', t.customer_link_confidence,
                'customer_linked_at', t.customer_linked_at
            ),
            jsonb_build_object(
                'customer_id', t.customer_id,
                'customer_link_status', f.customer_link_status,
                'customer_link_method', f.customer_link_method,
                'customer_link_confidence', f.customer_link_confidence,
                'customer_linked_at', f.customer_linked_at
            ),
            'legacy row: incomplete customer link'
        FROM to_fix AS t INNER JOIN fixed AS f ON t.id = f.id
        WHERE t.link_wrong
        RETURNING rule_id
    )

    SELECT
        count(*) FILTER (WHERE a.rule_id = 'I1_call_direction'),
        count(*) FILTER (WHERE a.rule_id = 'I2_customer_link'),
        (SELECT count(*) FROM batch AS b WHERE b.undecidable)
    INTO directions_fixed, links_fixed, undecidable_rows
    FROM audited AS a;

    SELECT array_agg(c.id) INTO fixable_calls
    FROM public.calls AS c
    WHERE
        c.id >= from_id AND c.id < to_id
        AND NOT coalesce(
            c.customer_link_confidence NOT BETWEEN 0 AND 100
            OR c.direction NOT IN ('inbound', 'outbound'),
            FALSE
        );
    rule_name := 'I1_call_direction';
    corrected := directions_fixed;
    RETURN NEXT;
    rule_name := 'I2_customer_link';
    corrected := links_fixed;
    RETURN NEXT;
    rule_name := 'I3_appointment_flags';
    corrected := CASE
        WHEN fixable_calls IS NULL THEN 0
        ELSE guard.refresh_call_flags(
            fixable_calls, audit_reason => 'legacy row: flags contradicted the appointments'
        )
    END;
    RETURN NEXT;
    rule_name := 'needs_review';
    corrected := undecidable_rows;
    RETURN NEXT;
END;
$function$;

CREATE OR REPLACE FUNCTION guard.reconcile(dry_run boolean DEFAULT FALSE)
RETURNS TABLE (action text, affected integer)
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET jit TO 'off'
AS $function$
DECLARE
    budget integer := (guard.setting('reconcile_batch_limit') #>> '{}')::integer;
    targets bigint[];
    link_appointments bigint[];
    link_calls bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:reconcile', 0));

    -- booking_outcome_unknown. The UPDATE re-checks the state under the row lock: an attempt
    -- its booking process closes meanwhile is left alone.
    SELECT coalesce(array_agg(b.id), '{}') INTO targets
    FROM (
        SELECT a.id
        FROM guard.booking_attempts AS a
        WHERE
            a.state = 'calling'
            AND a.created_at < now() - make_interval(
                secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
            )
        ORDER BY a.created_at, a.id
        LIMIT budget
    ) AS b;
    action := 'booking_outcome_unknown';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH marked AS (
            UPDATE guard.booking_attempts AS b SET state = 'unknown'
            WHERE b.id = ANY (targets) AND b.state = 'calling'
            RETURNING
                b.id, b.company_id, b.call_id, b.service_id, b.idempotency_key, b.started_by,
                b.created_at
        ),

        -- (a data-modifying WITH runs to completion whether or not it is read)
        alerted AS (
            INSERT INTO guard.alerts (
                fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
            )
            SELECT
                'booking_outcome_unknown:booking_attempt:' || m.id,
                'booking_outcome_unknown',
                m.company_id,
                'booking_attempt',
                m.id,
                'critical',
                'a booking attempt never finished: the calendar may hold a booking the database does not know',
                jsonb_build_object(
                    'idempotency_key', m.idempotency_key, 'call_id', m.call_id,
                    'service_id', m.service_id, 'started_at', m.created_at
                )
            FROM marked AS m
            ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
                SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now()
        )

        SELECT count(guard.enqueue_review(
            m.company_id, m.call_id, NULL, 'booking_outcome_unknown',
            jsonb_build_object(
                'idempotency_key', m.idempotency_key, 'attempt_id', m.id,
                'service_id', m.service_id, 'started_at', m.created_at,
                'started_by', m.started_by
            )
        ))::integer INTO affected
        FROM marked AS m;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- close_reviewed_attempt
    SELECT coalesce(array_agg(b.id), '{}') INTO targets
    FROM (
        SELECT a.id
        FROM guard.booking_attempts AS a
        WHERE
            a.state = 'unknown'
            AND NOT EXISTS (
                SELECT FROM guard.review_items AS r
                WHERE
                    r.call_id = a.call_id
                    AND r.reason = 'booking_outcome_unknown'
                    AND r.status IN ('open', 'claimed')
            )
        ORDER BY a.created_at, a.id
        LIMIT greatest(budget, 0)
    ) AS b;
    action := 'close_reviewed_attempt';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH closed AS (
            UPDATE guard.booking_attempts AS b
            SET
                state = 'failed',
                finished_at = now(),
                failure_reason = 'settled in review by ' || coalesce((
                    SELECT r.closed_by FROM guard.review_items AS r
                    WHERE r.call_id = b.call_id AND r.reason = 'booking_outcome_unknown'
                    ORDER BY r.closed_at DESC NULLS LAST, r.id DESC
                    LIMIT 1
                ), 'nobody (no review item)')
            WHERE b.id = ANY (targets) AND b.state = 'unknown'
            RETURNING b.id
        )

        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'manual'
        FROM closed AS c
        WHERE a.status = 'open' AND a.fingerprint = 'booking_outcome_unknown:booking_attempt:' || c.id;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- fill_direction
    SELECT coalesce(array_agg(c.id), '{}') INTO targets
    FROM (
        SELECT v.entity_id AS id FROM guard.check_call_without_direction AS v
        INNER JOIN public.calls AS c ON v.entity_id = c.id
        WHERE coalesce(nullif(lower(btrim(c.direction)), ''), 'inbound') IN ('inbound', 'outbound')
        ORDER BY v.entity_id
        LIMIT greatest(budget, 0)
    ) AS c;
    action := 'fill_direction';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT c.id, c.company_id, c.direction FROM public.calls AS c WHERE c.id = ANY (targets)
        ),

        fixed AS (
            UPDATE public.calls AS c SET direction = c.direction
            FROM before_fix AS b WHERE c.id = b.id
            RETURNING c.id, c.direction
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'call_without_direction', b.company_id, 'call', b.id,
            jsonb_build_object('direction', b.direction), jsonb_build_object('direction', f.direction),
            'reconcile: missing direction'
        FROM before_fix AS b INNER JOIN fixed AS f ON b.id = f.id;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- link_orphan_appointment: exactly one candidate call, in the same company, none elsewhere.
    SELECT coalesce(array_agg(l.appointment_id), '{}'), coalesce(array_agg(l.call_id), '{}')
    INTO link_appointments, link_calls
    FROM (
        SELECT a.id AS appointment_id, min(c.id) AS call_id
        FROM guard.check_orphaned_voice_appointment AS v
        INNER JOIN public.appointments AS a ON v.entity_id = a.id
        INNER JOIN public.calls AS c
            ON c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        WHERE (v.detail ->> 'calls_with_uid_other_company')::integer = 0
        GROUP BY a.id
        HAVING count(*) = 1
        ORDER BY a.id
        LIMIT greatest(budget, 0)
    ) AS l;
    action := 'link_orphan_appointment';
    affected := cardinality(link_appointments);
    IF NOT dry_run AND affected > 0 THEN
        WITH linked AS (
            UPDATE public.appointments AS a SET call_id = l.call_id, updated_at = now()
            FROM unnest(link_appointments, link_calls) AS l (appointment_id, call_id)
            WHERE a.id = l.appointment_id AND a.call_id IS NULL
            RETURNING a.id, a.company_id, a.call_id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'orphaned_voice_appointment', k.company_id, 'appointment', k.id,
            jsonb_build_object('call_id', NULL), jsonb_build_object('call_id', k.call_id),
            'reconcile: the only call of the company with the same booking uid'
        FROM linked AS k;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- rollback_phantom_booking (after the links above, which recover what can be recovered)
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM (
        -- (a dry run has not linked anything: leave out the calls a link would recover)
        SELECT p.entity_id FROM guard.check_booked_without_appointment AS p
        WHERE NOT (dry_run AND p.entity_id = ANY (link_calls))
        ORDER BY p.entity_id
        LIMIT greatest(budget, 0)
    ) AS v;
    action := 'rollback_phantom_booking';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT
                c.id, c.company_id, c.session_outcome, c.appointment_made, c.booking_failed,
                c.requires_manual_processing, c.booking_id
            FROM public.calls AS c
            WHERE c.id = ANY (targets)
            FOR NO KEY UPDATE
        ),

        rolled_back AS (
            UPDATE public.calls AS c
            SET
                session_outcome = 'creation_failed',
                appointment_made = FALSE,
                appointment_link_status = CASE WHEN c.appointment_link_status IS NULL THEN NULL ELSE 'unlinked' END,
                booking_confirmed = FALSE,
                booking_failed = TRUE,
                booking_failure_reason = coalesce(
                    c.booking_failure_reason, 'no appointment exists after the grace period'
                ),
                requires_manual_processing = TRUE,
                updated_at = now()
            FROM before_fix AS b
            WHERE c.id = b.id
            RETURNING c.id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'booked_without_appointment', b.company_id, 'call', b.id,
            jsonb_build_object(
                'session_outcome', b.session_outcome, 'appointment_made', b.appointment_made,
                'booking_failed', b.booking_failed,
                'requires_manual_processing', b.requires_manual_processing
            ),
            jsonb_build_object(
                'session_outcome', 'creation_failed', 'appointment_made', FALSE,
                'booking_failed', TRUE, 'requires_manual_processing', TRUE
            ),
            'reconcile: booked without an appointment after the grace period'
        FROM before_fix AS b INNER JOIN rolled_back AS r ON b.id = r.id;
        PERFORM guard.enqueue_review(
            c.company_id, c.id, NULL, 'calendar_booking_failure',
            jsonb_build_object('booking_id', c.booking_id, 'found_by', 'booked_without_appointment')
        )
        FROM public.calls AS c WHERE c.id = ANY (targets);
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- correct_flags
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM (
        SELECT f.entity_id FROM guard.check_flags_contradict_appointments AS f
        ORDER BY f.entity_id LIMIT greatest(budget, 0)
    ) AS v;
    action := 'correct_flags';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        affected := guard.refresh_call_flags(
            targets, audit_reason => 'reconcile: flags contradicted the appointments'
        );
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- review_orphan_appointment: none or several calls to choose from (never guessed).
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM guard.check_orphaned_voice_appointment AS v
    WHERE
        (v.detail ->> 'calls_with_uid_other_company')::integer = 0
        AND (v.detail ->> 'calls_with_uid_same_company')::integer <> 1
        AND NOT EXISTS (
            SELECT FROM guard.review_items AS r
            WHERE r.appointment_id = v.entity_id AND r.status IN ('open', 'claimed')
        );
    action := 'review_orphan_appointment';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        PERFORM guard.enqueue_review(
            v.company_id, NULL, v.entity_id, 'other',
            v.detail || jsonb_build_object('problem', 'orphaned_voice_appointment')
        )
        FROM guard.check_orphaned_voice_appointment AS v
        WHERE v.entity_id = ANY (targets);
    END IF;
    RETURN NEXT;

    -- review_cross_tenant: linked across companies, or the only candidate is in another
    -- company. Never corrected: which company is right is a person's call.
    SELECT coalesce(array_agg(t.entity_id), '{}') INTO targets
    FROM (
        SELECT x.entity_id FROM guard.check_cross_tenant_link AS x
        UNION
        SELECT o.entity_id FROM guard.check_orphaned_voice_appointment AS o
        WHERE (o.detail ->> 'calls_with_uid_other_company')::integer > 0
    ) AS t
    WHERE NOT EXISTS (
        SELECT FROM guard.review_items AS r
        WHERE r.appointment_id = t.entity_id AND r.status IN ('open', 'claimed')
    );
    action := 'review_cross_tenant';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        PERFORM guard.enqueue_review(
            a.company_id, NULL, a.id, 'other',
            jsonb_build_object(
                'problem', CASE WHEN a.call_id IS NULL THEN 'cross_tenant_candidate' ELSE 'cross_tenant_link' END,
                'booking_uid', a.calcom_v2_booking_id,
                'linked_call_id', a.call_id
            )
        )
        FROM public.appointments AS a
        WHERE a.id = ANY (targets);
    END IF;
    RETURN NEXT;
END;
$function$;

CREATE OR REPLACE FUNCTION guard.normalise_call_direction()
RETURNS trigger
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
BEGIN
    NEW.direction := coalesce(nullif(lower(btrim(NEW.direction)), ''), 'inbound');
    RETURN NEW;
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
$function$;

DROP FUNCTION guard.normalised_direction(direction text);

DROP FUNCTION guard.is_valid_customer_link(customer_id bigint, link_status text, linked_at timestamp with time zone, link_method text, link_confidence numeric);
