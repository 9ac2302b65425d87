-- Undo 0016_booking_attempts: the journal, its functions, check view, rule and setting are
-- dropped (the journal's rows with them); guard.reconcile and guard.apply_grants get their
-- earlier definitions back; review items booking_outcome_unknown become reason other (their
-- details keep the idempotency key) and the review queue's priorities are the earlier ones.

SET LOCAL lock_timeout = '5s';

DROP FUNCTION guard.unsettled_booking_attempts(integer, integer);

DROP FUNCTION guard.fail_booking_attempt(text, text, jsonb);

DROP FUNCTION guard.complete_booking_attempt(text, bigint, text);

DROP FUNCTION guard.settle_unknown_booking_attempt(bigint, bigint, text);

DROP FUNCTION guard.begin_booking_attempt(bigint, bigint);

DELETE FROM guard.rules
WHERE id = 'booking_outcome_unknown';

DROP VIEW guard.check_booking_outcome_unknown;

DROP TABLE guard.booking_attempts;

DELETE FROM guard.settings
WHERE key = 'booking_attempt_timeout_seconds';

-- Correct what is safe, queue the rest for a person, guess nothing. In order:
--   fill_direction            calls without a direction (the I1 normaliser fills inbound)
--   link_orphan_appointment   a voice-agent appointment without a call is linked to THE call of
--                             its company carrying its booking uid, when exactly one exists and
--                             no other company has one (the triggers then book the call)
--   rollback_phantom_booking  a call still claiming a booking without an appointment after the
--                             grace period: creation_failed, booking_failed,
--                             requires_manual_processing; queued for review
--   correct_flags             flags that contradict the appointments are derived again
--   review_orphan_appointment an orphan with no call or several calls to choose from
--   review_cross_tenant       an appointment linked to another company's call, or whose only
--                             candidate call belongs to another company
-- At most reconcile_batch_limit rows are changed per run (the next run continues). Every change
-- is in guard.correction_audit. dry_run counts what would be done and changes nothing.
CREATE OR REPLACE FUNCTION guard.reconcile(dry_run boolean DEFAULT FALSE)
RETURNS TABLE (action text, affected integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Like refresh_call_flags: JIT compilation of its large statements costs more than it saves.
SET jit = off
AS $$
DECLARE
    budget integer := (guard.setting('reconcile_batch_limit') #>> '{}')::integer;
    targets bigint[];
    link_appointments bigint[];
    link_calls bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:reconcile', 0));

    -- fill_direction
    SELECT coalesce(array_agg(c.id), '{}') INTO targets
    FROM (
        SELECT v.entity_id AS id FROM guard.check_call_without_direction AS v
        INNER JOIN public.calls AS c ON v.entity_id = c.id
        WHERE coalesce(nullif(lower(btrim(c.direction)), ''), 'inbound') IN ('inbound', 'outbound')
        ORDER BY v.entity_id
        LIMIT budget
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
$$;

-- An open item booking_outcome_unknown where the call already has an open item 'other' is
-- closed into that one (its note says so); every other one becomes reason 'other'.
UPDATE guard.review_items AS r
SET
    status = 'dismissed', closed_by = 'rollback 0016_booking_attempts', closed_at = now(),
    note = 'merged into the open item of reason other: booking outcome unknown, key '
    || coalesce(r.details ->> 'idempotency_key', '?')
WHERE
    r.reason = 'booking_outcome_unknown'
    AND r.status IN ('open', 'claimed')
    AND EXISTS (
        SELECT FROM guard.review_items AS o
        WHERE o.call_id = r.call_id AND o.reason = 'other' AND o.status IN ('open', 'claimed')
    );

UPDATE guard.review_items AS r
SET reason = 'other', details = r.details || '{"problem": "booking_outcome_unknown"}'
WHERE r.reason = 'booking_outcome_unknown';

ALTER TABLE guard.review_items
DROP CONSTRAINT review_items_reason_check,
ADD CONSTRAINT review_items_reason_check CHECK (
    reason IN (
        'validation_failure', 'calendar_booking_failure', 'customer_creation_failure',
        'service_not_found', 'other'
    )
);

ALTER TABLE guard.review_items DROP COLUMN priority;

ALTER TABLE guard.review_items ADD COLUMN priority smallint GENERATED ALWAYS AS (
    CASE reason
        WHEN 'validation_failure' THEN 1
        WHEN 'calendar_booking_failure' THEN 2
        WHEN 'customer_creation_failure' THEN 3
        WHEN 'service_not_found' THEN 4
        ELSE 5
    END
) STORED;

CREATE INDEX review_items_queue_idx ON guard.review_items (priority, created_at)
WHERE status = 'open';

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
            'guard.correct_call_writes(bigint[], text)',
            'guard.refresh_call_flags(bigint[], bigint[], text, boolean)'
        ]) AS f (signature)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, app_role);
    END LOOP;

    -- Reporting and reviewer: read-only, the BI views and, because those views are
    -- security_invoker, the tables behind them (row-level security limits both to their tenant);
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
                        'jobs', 'job_runs'
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
    END LOOP;

    -- Reviewer: works the review queue of its tenant (review_claim and review_close run with
    -- its rights, under row-level security).
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

-- Ownership and privileges of every Booking Guard object, from guard.role_names (see
-- guard.apply_grants). A DO block, not a SELECT: yoyo prints the rows a migration's SELECT
-- returns.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
