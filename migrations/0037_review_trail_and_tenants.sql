-- 0037_review_trail_and_tenants: the review rules hold for any SQL (a trigger refuses a forged
-- claim or close: back-dated or future times, a false positive that is not dismissed, reopening,
-- closing without a note); a deleted company's bindings go and its open alerts and review items
-- are closed, so a later company with its id is not visible to the old logins; phone numbers in
-- the failure reason are masked where calls_report and the recent-failure check show it. What
-- companies deleted before left behind is removed or closed here.
-- Locks:
--   view guard.calls_report: ACCESS EXCLUSIVE, an instant
--   view guard.check_recent_booking_failure: ACCESS EXCLUSIVE, an instant
--   trigger review_items_enforce_trail: SHARE ROW EXCLUSIVE on guard.review_items, an instant
--   trigger guard_companies_forget_deleted: SHARE ROW EXCLUSIVE on public.companies, an instant
--   the corrections: ROW EXCLUSIVE on guard.alerts, guard.review_items, guard.tenant_bindings
--   (rows locked as they are updated: those of deleted companies)

-- The review trail is written by the database's rules, not by whoever runs the UPDATE: the
-- reviewer role may UPDATE the claim and close columns (the review functions run with its
-- rights), so these rules hold for any SQL a reviewer, a job or the owner runs.
-- open -> claimed -> resolved | dismissed, or open -> resolved | dismissed; nothing else:
-- a closed item is final (never reopened, its outcome, note and times never rewritten) and a
-- claim is not handed back. claimed_at and closed_at are the transaction's time (now()): a
-- statement may leave them out or say now(), any other time is refused rather than corrected, so
-- a forged time never looks accepted. Closing needs a note; only a dismissed item can be a false
-- positive (as guard.review_close says). While an item is claimed its claimed_by label may be
-- corrected (guard.stamp_review_actor records the login that did it); nothing else of the trail
-- changes outside a transition.
-- One error (check_violation) naming the item and the rule; the statement changes nothing.
CREATE OR REPLACE FUNCTION guard.enforce_review_trail()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    problem text;
BEGIN
    IF OLD.status IN ('resolved', 'dismissed') THEN
        IF (NEW.status, NEW.claimed_by, NEW.claimed_at, NEW.closed_by, NEW.closed_at, NEW.note,
            NEW.false_positive)
            IS DISTINCT FROM (OLD.status, OLD.claimed_by, OLD.claimed_at, OLD.closed_by,
                OLD.closed_at, OLD.note, OLD.false_positive) THEN
            problem := format('it is %s, and a closed item is never reopened or rewritten', OLD.status);
        END IF;
    ELSIF NEW.status = 'open' AND OLD.status = 'claimed' THEN
        problem := 'a claimed item is closed (guard review resolve|dismiss), not handed back';
    ELSIF NEW.status = 'claimed' AND OLD.status = 'open' THEN
        IF NEW.claimed_at IS DISTINCT FROM now() AND NEW.claimed_at IS NOT NULL THEN
            problem := 'claimed_at is the time of the claim, set by the database';
        ELSIF nullif(btrim(NEW.claimed_by), '') IS NULL THEN
            problem := 'a claim needs a claimed_by label';
        ELSIF (NEW.closed_by, NEW.closed_at, NEW.note, NEW.false_positive)
            IS DISTINCT FROM (OLD.closed_by, OLD.closed_at, OLD.note, OLD.false_positive) THEN
            problem := 'claiming an item does not close it';
        END IF;
        NEW.claimed_at := now();
    ELSIF NEW.status IN ('resolved', 'dismissed') THEN
        IF NEW.closed_at IS DISTINCT FROM now() AND NEW.closed_at IS NOT NULL THEN
            problem := 'closed_at is the time of the close, set by the database';
        ELSIF nullif(btrim(NEW.note), '') IS NULL THEN
            problem := 'closing an item needs a note';
        ELSIF NEW.false_positive AND NEW.status <> 'dismissed' THEN
            problem := 'only a dismissed item can be a false positive';
        ELSIF (NEW.claimed_by, NEW.claimed_at) IS DISTINCT FROM (OLD.claimed_by, OLD.claimed_at) THEN
            problem := 'closing an item does not change its claim';
        END IF;
        NEW.closed_at := now();
    ELSIF (NEW.claimed_at, NEW.closed_by, NEW.closed_at, NEW.note, NEW.false_positive)
        IS DISTINCT FROM (OLD.claimed_at, OLD.closed_by, OLD.closed_at, OLD.note, OLD.false_positive)
        OR (NEW.status = 'open' AND NEW.claimed_by IS DISTINCT FROM OLD.claimed_by) THEN
        problem := format(
            'it is %s: its claim and close are written by claiming and closing it', OLD.status
        );
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'review item %: %', OLD.id, problem
            USING
                ERRCODE = 'check_violation',
                HINT = 'guard review claim|resolve|dismiss (guard.review_claim, guard.review_close)';
    END IF;
    RETURN NEW;
END;
$$;

-- A deleted company takes its tenant state with it, in the deleting statement: its bindings go
-- (a company created later with the same id is not visible to the logins of the old one), its
-- open alerts are resolved as superseded with the reason in their details, and its open or
-- claimed review items are dismissed with a note saying why. History (closed items, resolved
-- alerts, audit, reports) is kept. Set-based over the statement's deleted rows (a transition
-- table), so deleting many companies costs one statement per table.
-- SECURITY DEFINER: it fires for the application role, which may delete companies but may not
-- write bindings, alerts or review items; it touches only the deleted companies' rows.
CREATE OR REPLACE FUNCTION guard.forget_deleted_companies()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM guard.tenant_bindings AS b
    USING deleted_companies AS d
    WHERE b.company_id = d.id;
    UPDATE guard.alerts AS a
    SET
        status = 'resolved',
        resolved_at = now(),
        resolution = 'superseded',
        details = a.details || jsonb_build_object('resolved_because', 'company deleted')
    FROM deleted_companies AS d
    WHERE a.company_id = d.id AND a.status = 'open';
    UPDATE guard.review_items AS r
    SET
        status = 'dismissed',
        closed_by = 'booking-guard',
        note = 'the company was deleted'
    FROM deleted_companies AS d
    WHERE r.company_id = d.id AND r.status IN ('open', 'claimed');
    RETURN NULL;
END;
$$;

-- Mask every phone number inside free text (a failure reason, a note, a JSON string), for
-- whatever the reporting role can read: each run that looks like a phone number (an optional
-- '+', then digits with spaces, dots, dashes, slashes or brackets, at least seven digits) is
-- masked as guard.mask_phone masks a number. A run of more than fifteen digits (the longest
-- number E.164 allows) is several numbers written next to each other, and mask_phone would keep
-- every group but the last: all its digits are hidden. A date (YYYY-MM-DD, as in a timestamp)
-- is not a phone number and stays. The rest of the text stays as it was. NULL stays NULL.
-- Not a regexp_replace: the replacement depends on the match (PostgreSQL 15 has no callback).
CREATE OR REPLACE FUNCTION guard.mask_phone_numbers(free_text text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    number_pattern constant text := '\+?[0-9(][0-9 ()./-]{5,}[0-9]';
    parts text[];
    numbers text[];
    masked text;
BEGIN
    IF free_text IS NULL OR free_text !~ number_pattern THEN
        RETURN free_text;
    END IF;
    parts := regexp_split_to_array(free_text, number_pattern);
    numbers := ARRAY(
        SELECT m[1] FROM regexp_matches(free_text, '(' || number_pattern || ')', 'g') AS m
    );
    masked := parts[1];
    FOR i IN 1 .. cardinality(numbers) LOOP
        masked := masked || CASE
            WHEN numbers[i] ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN numbers[i]
            WHEN length(regexp_replace(numbers[i], '[^0-9]', '', 'g')) < 7 THEN numbers[i]
            WHEN length(regexp_replace(numbers[i], '[^0-9]', '', 'g')) > 15
                THEN regexp_replace(numbers[i], '[0-9]', '*', 'g')
            ELSE guard.mask_phone(numbers[i])
        END || parts[i + 1];
    END LOOP;
    RETURN masked;
END;
$$;

-- guard.mask_phone_numbers over a JSON value (alert and review details, booking details): every
-- string, keys included, at any depth. Numbers, booleans and nulls stay (ids are numbers; a
-- phone number stored as a JSON number is not recognised). NULL stays NULL.
-- PL/pgSQL, not SQL: it calls itself, which a SQL function's body cannot name at creation.
CREATE OR REPLACE FUNCTION guard.mask_phone_numbers_json(document jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE jsonb_typeof(document)
        WHEN 'string' THEN to_jsonb(guard.mask_phone_numbers(document #>> '{}'))
        WHEN 'object' THEN coalesce((
            SELECT jsonb_object_agg(
                guard.mask_phone_numbers(e.key), guard.mask_phone_numbers_json(e.value)
            )
            FROM jsonb_each(document) AS e
        ), '{}'::jsonb)
        WHEN 'array' THEN coalesce((
            SELECT jsonb_agg(guard.mask_phone_numbers_json(e.value) ORDER BY e.n)
            FROM jsonb_array_elements(document) WITH ORDINALITY AS e (value, n)
        ), '[]'::jsonb)
        ELSE document
    END;
END;
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

-- What companies deleted before left behind is removed or closed as
-- guard.forget_deleted_companies does now. Before the trail trigger, which refuses closing an item
-- with a time the statement chose.
DELETE FROM guard.tenant_bindings AS b
WHERE NOT EXISTS (
    SELECT FROM public.companies AS c
    WHERE c.id = b.company_id
);

UPDATE guard.alerts AS a
SET
    status = 'resolved',
    resolved_at = now(),
    resolution = 'superseded',
    details = a.details || jsonb_build_object('resolved_because', 'company deleted')
WHERE
    a.status = 'open'
    AND a.company_id IS NOT NULL
    AND NOT EXISTS (
        SELECT FROM public.companies AS c
        WHERE c.id = a.company_id
    );

UPDATE guard.review_items AS r
SET
    status = 'dismissed',
    closed_by = 'booking-guard',
    closed_at = now(),
    note = 'the company was deleted'
WHERE
    r.status IN ('open', 'claimed')
    AND r.company_id IS NOT NULL
    AND NOT EXISTS (
        SELECT FROM public.companies AS c
        WHERE c.id = r.company_id
    );

-- The calls as reporting sees them: every reporting column, and the phone numbers masked
-- (guard.mask_phone), as are phone numbers inside the failure reason, free text the application
-- writes (guard.mask_phone_numbers). The reporting role may read this view but not the raw
-- from_number and to_number of public.calls, so this is the one view in schema guard that is NOT
-- security_invoker: a view running with the reader's rights could not read the raw numbers to
-- mask them. It runs with its owner's rights instead, and therefore filters by the reader's
-- companies itself (guard.visible_companies(): the companies bound to the reader's role, since
-- current_user in a view is still the reader; unbound: no rows); security_barrier keeps a
-- reader's own conditions from being evaluated before that filter.
CREATE OR REPLACE VIEW guard.calls_report WITH (security_barrier = TRUE) AS
SELECT
    c.id,
    c.company_id,
    c.retell_call_id,
    guard.mask_phone(c.from_number) AS from_number_masked,
    guard.mask_phone(c.to_number) AS to_number_masked,
    c.status,
    c.direction,
    c.customer_id,
    c.customer_link_status,
    c.customer_link_method,
    c.customer_link_confidence,
    c.customer_linked_at,
    c.session_outcome,
    c.appointment_made,
    c.appointment_link_status,
    c.appointment_linked_at,
    c.booking_id,
    c.booking_confirmed,
    c.booking_failed,
    guard.mask_phone_numbers(c.booking_failure_reason) AS booking_failure_reason,
    c.requires_manual_processing,
    c.created_at,
    c.updated_at
FROM public.calls AS c
WHERE c.company_id = ANY((SELECT guard.visible_companies())::bigint[]);  -- noqa: CP03

-- I7, check recent_booking_failure of rule I7_booking_failures: a booking that failed within the
-- failure window (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
-- The failure reason is free text the application writes: phone numbers in it are masked.
-- The window's start is a MATERIALIZED CTE so that calls is joined on a plain column: under the
-- row-level security of a reporting login, a condition that holds a sub-select (or computes with
-- another table's columns) is not leakproof, may not be pushed below the tenant policy into the
-- index scan on created_at, and calls was read whole (bench/tenant_rls.py).
CREATE OR REPLACE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
WITH failure_window AS MATERIALIZED (
    SELECT now() - make_interval(mins => (s.value #>> '{}')::integer) AS since
    FROM guard.settings AS s
    WHERE s.key = 'failure_window_minutes'
)

SELECT
    'recent_booking_failure'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'session_outcome', c.session_outcome,
        'booking_failure_reason', guard.mask_phone_numbers(c.booking_failure_reason),
        'requires_manual_processing', c.requires_manual_processing
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM failure_window AS w
INNER JOIN public.calls AS c ON w.since <= c.created_at
WHERE c.session_outcome = 'creation_failed' OR c.booking_failed;

-- Every update of a review item follows the review rules (guard.enforce_review_trail), whoever
-- runs it. Named to fire before review_items_stamp_actor (BEFORE triggers fire in name order),
-- which then records the login behind the claim or close this one let through.
CREATE OR REPLACE TRIGGER review_items_enforce_trail
BEFORE UPDATE ON guard.review_items
FOR EACH ROW EXECUTE FUNCTION guard.enforce_review_trail();

-- Deleting companies removes their bindings and closes their open alerts and review items
-- (guard.forget_deleted_companies), once per statement. guard_*: the application's table, where
-- guard db verify compares only Booking Guard's own objects.
CREATE OR REPLACE TRIGGER guard_companies_forget_deleted
AFTER DELETE ON public.companies
REFERENCING OLD TABLE AS deleted_companies
FOR EACH STATEMENT EXECUTE FUNCTION guard.forget_deleted_companies();

-- Ownership and grants of the new objects.
SELECT guard.apply_grants();
