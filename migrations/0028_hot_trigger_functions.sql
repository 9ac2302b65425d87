-- 0028_hot_trigger_functions (written by `make migration`, reviewed): the trigger functions that
-- fire on the application's everyday writes lose their SET clauses (bench/instructions.py, the
-- booking lifecycle: a function with a SET clause goes through PostgreSQL's GUC save and restore,
-- and a changed search_path makes the next plan lookup recompute it, about 35k instructions per
-- firing). They run with the writer's rights and qualify every function name (docs/security.md,
-- "Trigger functions without SET clauses"):
--   guard.correct_flags_after_call_update and guard.correct_flags_after_call_insert were SECURITY
--     DEFINER only to record a contradicting write in guard.flag_checks_at_commit: the application
--     role may now insert (call_ids, written_by) there and nothing else, and written_by (insert |
--     update) replaces the free-text reason, which guard.check_flags_at_commit now words;
--   the check of a one-row write of the flags passes ARRAY[id]: PostgreSQL reuses one plan for
--     it, where an array variable made it plan the check again on every firing (the reason for
--     the SET plan_cache_mode clause these functions had);
--   guard.sync_flags_after_appointment_insert, guard.normalise_customer_link and
--     guard.normalise_call_direction lose SET search_path;
--   guard.note_flag_write sets its mark by assignment instead of PERFORM (no query).
-- Locks: ACCESS EXCLUSIVE on guard.flag_checks_at_commit for an instant (catalog only: its rows
-- never outlive their transaction, so between transactions it is empty), under the migrator's
-- lock_timeout and retries; the application's call-first bookings wait that instant. No lock on
-- the booking tables.

-- Every row of this table is deleted by the commit of the transaction that wrote it: it is empty
-- here, so a NOT NULL column without a default adds nothing to rewrite or check.
ALTER TABLE guard.flag_checks_at_commit
-- squawk-ignore ban-drop-column
DROP COLUMN reason,
-- squawk-ignore adding-required-field
ADD COLUMN written_by text NOT NULL CHECK (written_by IN ('insert', 'update'));

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

-- I3, the deferred constraint trigger on guard.flag_checks_at_commit: at commit, the calls whose
-- booking flags this transaction wrote against its appointments are checked again. Flags the
-- transaction made true by then (it inserted the appointment after writing the call) pass
-- silently; the rest are corrected, audited and alerted (guard.refresh_call_flags) in the rule's
-- correct mode, or fail the commit (23514) in reject mode. A disabled rule lets them stand
-- (detection still reports them).
-- The first firing takes every row of the transaction (one set-based pass, whatever the number
-- of statements that wrote flags); later firings of the same commit find nothing.
-- SECURITY DEFINER: it reads and deletes guard.flag_checks_at_commit and writes the audit
-- through refresh_call_flags, none of which the application may do itself.
CREATE OR REPLACE FUNCTION guard.check_flags_at_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    call_ids bigint[];
    reasons text;
    rule_mode text;
    contradicting bigint[];
BEGIN
    WITH taken AS (
        DELETE FROM guard.flag_checks_at_commit AS p
        WHERE p.xact = pg_current_xact_id()
        RETURNING
            p.call_ids,
            CASE p.written_by
                WHEN 'insert' THEN 'a new call claimed a booking its appointments do not show'
                ELSE 'an update wrote booking flags that contradict the appointments'
            END AS reason
    )

    SELECT
        array_agg(DISTINCT x.id ORDER BY x.id),
        string_agg(DISTINCT t.reason, '; ' ORDER BY t.reason)
    INTO call_ids, reasons
    FROM taken AS t CROSS JOIN LATERAL unnest(t.call_ids) AS x (id);
    IF call_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- The transaction wrote these calls, so it holds their row locks (or created them): no
    -- other writer can change what they derive from before it commits.
    contradicting := ARRAY(SELECT f.id FROM guard.call_flags_to_correct(call_ids, FALSE) AS f);
    IF cardinality(contradicting) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF rule_mode = 'reject' THEN
        RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments',
            cardinality(contradicting)
            USING
                ERRCODE = 'check_violation',
                HINT = 'appointment_made and the appointment link are derived from the '
                || 'appointments table (rule I3_appointment_flags is in reject mode); '
                || 'checked when the transaction commits';
    END IF;
    PERFORM guard.refresh_call_flags(contradicting, reasons);
    RETURN NULL;
END;
$$;

-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking contradicts them now. The application may still insert
-- the appointment in the same transaction (the call first, then its appointment), so the claim is
-- judged when the transaction commits (guard.check_flags_at_commit): corrected there, or refused
-- in reject mode.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md): it fires for every insert of a call, and
-- a SECURITY DEFINER function with SET clauses cost each firing about 35k instructions. The
-- writer may record a pending check (guard.flag_checks_at_commit) but not read or remove one.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    claiming_calls := ARRAY(
        SELECT n.id FROM new_rows AS n WHERE n.appointment_made OR n.appointment_link_status = 'linked'
    );
    -- The INSERT runs only when there is something to record: a statement that is never run is
    -- never initialised (the everyday insert of a call claims nothing).
    IF pg_catalog.cardinality(claiming_calls) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (claiming_calls, 'insert');
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: the calls of a statement that wrote booking
-- flags (marked by guard.note_flag_write, the BEFORE trigger on those columns) are checked against
-- their appointments. A statement that wrote no flag column ends at the first line. Writes by
-- Booking Guard's own triggers (depth > 1) are derived already.
-- A write that agrees with the appointments (the everyday case: the application sets the flags
-- after writing the appointment) ends here. One that contradicts them may be a state the
-- transaction has not finished (the call's flags first, then its appointment), so it is judged
-- when the transaction commits (guard.check_flags_at_commit): corrected there, or refused in
-- reject mode.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md): it fires for every update of a call, most
-- of which end at the first line, and a SECURITY DEFINER function with SET clauses cost each of
-- those firings about 35k instructions. The writer may record a pending check
-- (guard.flag_checks_at_commit) but not read or remove one.
-- One call (the everyday one-row write) is passed as ARRAY[id]: PostgreSQL then plans the check
-- for one call once and reuses the plan. For an array variable it assumes ten elements, prefers
-- a plan of its own for every firing and plans it again each time; a statement of many calls
-- pays that planning once for all of them.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    written_calls bigint[];
    contradicting bigint[];
BEGIN
    IF
        pg_catalog.pg_trigger_depth() > 1
        OR pg_catalog.current_setting('booking_guard.i3_flags_written', TRUE) IS DISTINCT FROM 'on'
    THEN
        RETURN NULL;
    END IF;
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'off', TRUE);
    written_calls := ARRAY(SELECT n.id FROM new_rows AS n);
    IF pg_catalog.cardinality(written_calls) = 1 THEN
        contradicting := ARRAY(
            SELECT f.id FROM guard.call_flags_to_correct(ARRAY[written_calls[1]], FALSE) AS f
        );
    ELSIF pg_catalog.cardinality(written_calls) > 1 THEN
        contradicting := ARRAY(
            SELECT f.id FROM guard.call_flags_to_correct(written_calls, FALSE) AS f
        );
    END IF;
    IF pg_catalog.cardinality(contradicting) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (contradicting, 'update');
    END IF;
    RETURN NULL;
END;
$$;

-- I1, BEFORE ROW on calls: a missing or blank direction becomes inbound, case is folded.
-- Any other value is left for the CHECK to refuse: guessing would hide a bug.
-- No SET clause: see "Trigger functions without SET clauses" in docs/security.md.
CREATE OR REPLACE FUNCTION guard.normalise_call_direction()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.direction := guard.normalised_direction(NEW.direction);
    RETURN NEW;
END;
$$;

-- I2, BEFORE ROW on calls: the customer link fields follow customer_id. A linked customer gets
-- status linked and, where the writer said nothing, linked_at now() and the default method and
-- confidence; a newly linked customer does not inherit the previous customer's link details.
-- No customer: anonymous for callers without a usable number, unlinked otherwise.
-- No SET clause, every function name qualified: see "Trigger functions without SET clauses" in
-- docs/security.md.
CREATE OR REPLACE FUNCTION guard.normalise_customer_link()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.customer_id IS NULL THEN
        NEW.customer_link_status := CASE
            WHEN NEW.customer_link_status = 'anonymous'
                OR nullif(pg_catalog.btrim(coalesce(NEW.from_number, '')), '') IS NULL
                OR pg_catalog.lower(pg_catalog.btrim(NEW.from_number))
                IN ('anonymous', 'unknown', 'restricted', 'private')
                THEN 'anonymous'
            ELSE 'unlinked'
        END;
        NEW.customer_linked_at := NULL;
        NEW.customer_link_method := NULL;
        NEW.customer_link_confidence := NULL;
        RETURN NEW;
    END IF;

    IF TG_OP = 'UPDATE' AND NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
        IF NEW.customer_linked_at IS NOT DISTINCT FROM OLD.customer_linked_at THEN
            NEW.customer_linked_at := NULL;
        END IF;
        IF NEW.customer_link_method IS NOT DISTINCT FROM OLD.customer_link_method THEN
            NEW.customer_link_method := NULL;
        END IF;
        IF NEW.customer_link_confidence IS NOT DISTINCT FROM OLD.customer_link_confidence THEN
            NEW.customer_link_confidence := NULL;
        END IF;
    END IF;

    NEW.customer_link_status := 'linked';
    NEW.customer_linked_at := coalesce(NEW.customer_linked_at, pg_catalog.now());
    NEW.customer_link_method := coalesce(
        NEW.customer_link_method, guard.setting('default_customer_link_method') #>> '{}'
    );
    NEW.customer_link_confidence := coalesce(
        NEW.customer_link_confidence,
        (guard.setting('default_customer_link_confidence') #>> '{}')::numeric
    );
    RETURN NEW;
END;
$$;

-- I3, BEFORE UPDATE OF the booking flags ... FOR EACH STATEMENT on calls: marks, for the rest of
-- this statement, that the application wrote booking flags, so that the statement's AFTER trigger
-- (guard.correct_flags_after_call_update) checks its rows. A statement that writes no flag column
-- (the application's everyday update of a call's status) does not fire this trigger, and its
-- AFTER trigger returns at once: before, it paired both transition tables to find changed flags,
-- about 90k instructions for every update of a call (bench/instructions.py).
-- The mark is a setting local to the transaction (booking_guard.i3_flags_written): a BEFORE
-- trigger always runs before the AFTER trigger of the same statement, which clears it. A session
-- can set it too. Setting it only makes a statement check more; clearing it inside the very
-- statement that writes flags (set_config in its SET list) skips the write-time check, which no
-- application does by mistake, and guard.run_detection still reports the contradiction (I3) on
-- its next run.
-- No SET clause: nothing here is looked up by name but pg_catalog.set_config.
CREATE OR REPLACE FUNCTION guard.note_flag_write()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'on', TRUE);
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
-- No SET clause, every function name qualified: see "Trigger functions without SET clauses" in
-- docs/security.md (a SET clause costs every firing about 35k instructions).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE public.calls AS c
    SET
        appointment_made = TRUE,
        appointment_link_status = 'linked',
        appointment_linked_at = coalesce(c.appointment_linked_at, pg_catalog.now()),
        session_outcome = 'appointment_booked',
        booking_failed = FALSE,
        updated_at = pg_catalog.now()
    WHERE c.id = ANY (ARRAY(
        SELECT n.call_id
        FROM new_rows AS n
        WHERE n.call_id IS NOT NULL AND guard.is_active_appointment(n.status, n.deleted_at)
    ));
    RETURN NULL;
END;
$$;

SELECT guard.apply_grants();
