-- Rollback of 0043_role_grants_as_data: guard.apply_grants with its lists in its body again, and
-- guard.role_grants dropped. The grants themselves do not change.

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
    -- The calls triggers run with the writer's rights: they record a contradicting write of the
    -- booking flags for the commit-time check, and nothing else (no reading or removing one).
    EXECUTE format(
        'GRANT INSERT (call_ids, written_by) ON TABLE guard.flag_checks_at_commit TO %I', app_role
    );
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
            -- the stored direction, inlined into the normaliser that runs with the writer's rights
            'guard.normalised_direction(text)',
            -- the booking journal (guard.booking_attempts), written only through these
            'guard.begin_booking_attempt(bigint, bigint)',
            'guard.complete_booking_attempt(text, bigint, text)',
            'guard.fail_booking_attempt(text, text, jsonb)',
            'guard.unsettled_booking_attempts(integer, integer)',
            -- breaker history, written behind by the application's breakers (they may not
            -- write guard.breaker_events / guard.breaker_state themselves)
            'guard.record_breaker_transitions(jsonb)',
            -- a circuit evicted from Redis is restored from its last recorded state (they may
            -- not read guard.breaker_state themselves)
            'guard.breaker_restore_state(text)'
        ]) AS f (signature)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, app_role);
    END LOOP;

    -- Reporting and reviewer: read-only, the BI views and, because those views are
    -- security_invoker, the tables behind them (row-level security limits both to the companies
    -- bound to the role, guard.tenant_bindings);
    -- never the raw phone numbers. The reporting role does not read free text raw either (the
    -- application's failure reasons and booking details, and what detection, corrections and
    -- reviewers copy of them): it reads those columns masked, through guard.calls_report,
    -- guard.alerts_report, guard.review_items_report and guard.correction_audit_report. The
    -- reviewer reads them whole: it acts on them (calls the customer back, finds the booking).
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO calls_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'retell_call_id', 'status', 'direction', 'customer_id',
        'customer_link_status', 'customer_link_method', 'customer_link_confidence',
        'customer_linked_at', 'session_outcome', 'appointment_made', 'appointment_link_status',
        'appointment_linked_at', 'booking_id', 'booking_confirmed', 'booking_failed',
        'requires_manual_processing', 'created_at', 'updated_at'
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
                        'calls_report', 'alerts_report', 'review_items_report',
                        'correction_audit_report', 'daily_reports', 'validation_metrics',
                        'breaker_events', 'settings', 'jobs', 'job_runs',
                        -- the registries: an alert's check_id leads to its check and rule
                        'rules', 'checks',
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
            ' guard.mask_phone(text), guard.mask_phone_numbers(text),'
            ' guard.mask_phone_numbers_json(jsonb) TO %I',
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

    -- Free text: whole for the reviewer, masked (the *_report views above) for reporting, which
    -- reads every other column of these tables.
    EXECUTE format(
        'GRANT SELECT ON TABLE guard.alerts, guard.review_items, guard.correction_audit TO %I',
        guard.role('reviewer')
    );
    EXECUTE format(
        'GRANT SELECT (booking_details, booking_failure_reason) ON TABLE public.calls TO %I',
        guard.role('reviewer')
    );
    EXECUTE format(
        'GRANT SELECT (id, fingerprint, check_id, company_id, entity_type, entity_id, severity,'
        ' message, status, occurrences, first_seen_at, last_seen_at, resolved_at, resolution,'
        ' delivered_at) ON TABLE guard.alerts TO %I',
        guard.role('reporting')
    );
    EXECUTE format(
        'GRANT SELECT (id, company_id, call_id, appointment_id, reason, priority, status,'
        ' created_at, claimed_at, closed_at, false_positive, claimed_by_role, closed_by_role)'
        ' ON TABLE guard.review_items TO %I',
        guard.role('reporting')
    );
    EXECUTE format(
        'GRANT SELECT (id, rule_id, company_id, entity_type, entity_id, reason, actor,'
        ' corrected_at) ON TABLE guard.correction_audit TO %I',
        guard.role('reporting')
    );

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

DROP TABLE guard.role_grants;
