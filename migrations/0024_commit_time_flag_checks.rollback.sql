-- Back to the flag paths of 0020_everyday_paths and the legacy-row triggers of
-- 0021_legacy_rows_on_update: flags checked at the end of each statement through
-- guard.correct_call_writes, refresh_call_flags with every mode, the appointment triggers'
-- two functions, the direction normaliser on every update.

DROP TRIGGER IF EXISTS guard_calls_normalise_legacy_direction ON public.calls;
DROP TRIGGER guard_calls_note_flag_write ON public.calls;
DROP FUNCTION guard.note_flag_write();
CREATE OR REPLACE TRIGGER guard_calls_correct_flags_update
AFTER UPDATE ON public.calls
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_update();

-- I1: a missing direction becomes inbound before the row is stored. On every insert, and on
-- every update that would store a direction the CHECK refuses, whichever columns it sets: on an
-- adopted database the CHECK is NOT VALID until `guard db validate`, yet PostgreSQL checks each
-- new row version against it, so an old row without a direction would make the application's
-- update of its status fail. The WHEN clause keeps the function off the everyday update.
CREATE OR REPLACE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();

-- I2 (0021_legacy_rows_on_update): the legacy-link trigger on every database again.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = 'public.calls'::regclass AND t.tgname = 'guard_calls_normalise_legacy_link'
    ) THEN
        CREATE TRIGGER guard_calls_normalise_legacy_link
        BEFORE UPDATE ON public.calls
        FOR EACH ROW
        WHEN (
            NOT coalesce(
                CASE
                    WHEN new.customer_id IS NOT NULL
                        THEN
                            new.customer_link_status = 'linked'
                            AND new.customer_linked_at IS NOT NULL
                            AND new.customer_link_method IS NOT NULL
                            AND new.customer_link_confidence IS NOT NULL
                    ELSE new.customer_link_status IN ('unlinked', 'anonymous')
                END,
                FALSE
            )
        )
        EXECUTE FUNCTION guard.normalise_customer_link();
    END IF;
END;
$$;

DROP FUNCTION guard.sync_legacy_triggers();

-- I3: the application wrote booking flags on these calls. In the rule's correct mode, flags that
-- contradict the appointments are corrected (audited, one alert per company); in reject mode the
-- statement fails. A disabled rule lets the write stand (detection still reports it).
-- SECURITY DEFINER: fired by the application's writes, it reads the rule registry and (through
-- refresh_call_flags, which checks the tenant) writes the audit and alerts.
CREATE FUNCTION guard.correct_call_writes(call_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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

-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking is corrected (or refused, in reject mode).
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    SELECT array_agg(n.id) INTO claiming_calls
    FROM new_rows AS n
    WHERE n.appointment_made OR n.appointment_link_status = 'linked';
    IF claiming_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            claiming_calls, 'a new call claimed a booking its appointments do not show'
        );
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. A changed row is a new version that no old version matches on the flags:
-- both transition tables grouped together (old -1, new +1), never joined (see
-- guard.sync_flags_after_appointment_update); one hash aggregate, cheaper than EXCEPT for the
-- application's everyday one-row update of a call.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    written_calls bigint[];
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(w.id) INTO written_calls
    FROM (
        SELECT u.id
        FROM (
            SELECT
                o.id,
                o.appointment_made,
                o.appointment_link_status,
                o.appointment_linked_at,
                o.session_outcome,
                o.booking_failed,
                -1 AS side
            FROM old_rows AS o
            UNION ALL
            SELECT
                n.id,
                n.appointment_made,
                n.appointment_link_status,
                n.appointment_linked_at,
                n.session_outcome,
                n.booking_failed,
                1 AS side
            FROM new_rows AS n
        ) AS u
        GROUP BY
            u.id,
            u.appointment_made,
            u.appointment_link_status,
            u.appointment_linked_at,
            u.session_outcome,
            u.booking_failed
        HAVING sum(u.side) > 0
    ) AS w;
    IF written_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            written_calls, 'an update wrote booking flags that contradict the appointments'
        );
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: recompute the calls on both sides of
-- every appointment whose call, company or activeness (status, soft delete) changed.
-- The changed rows are found by grouping both transition tables together on what matters (the
-- old version counts -1, the new one +1): an unchanged row's two versions cancel out, a changed
-- row leaves its old side (-1) and its new side (+1). One scan of each table and one hash
-- aggregate: cheaper than the two EXCEPTs this replaced, and never a join of the transition
-- tables, whose plan, cached from a one-row firing, made a big statement quadratic.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One statement finds the calls and derives their flags: a one-row update pays for one
    -- executor run here, not two.
    PERFORM guard.refresh_call_flags(touched.calls, lost_from => touched.lost)
    FROM (
        SELECT
            array_agg(DISTINCT v.call_id) AS calls,
            coalesce(
                array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}'
            ) AS lost
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
        WHERE v.call_id IS NOT NULL
    ) AS touched
    WHERE touched.calls IS NOT NULL;
    RETURN NULL;
END;
$$;

-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: calls that lost an active appointment
-- keep their flags only while another active appointment remains.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One statement finds the calls and derives their flags: a one-row delete pays for one
    -- executor run here, not two.
    PERFORM guard.refresh_call_flags(lost.calls, lost_from => lost.calls)
    FROM (
        SELECT array_agg(DISTINCT o.call_id) AS calls
        FROM old_rows AS o
        WHERE
            o.call_id IS NOT NULL
            AND o.deleted_at IS NULL
            AND o.status IS DISTINCT FROM 'cancelled'
    ) AS lost
    WHERE lost.calls IS NOT NULL;
    RETURN NULL;
END;
$$;

DROP TABLE guard.flag_checks_at_commit;
DROP FUNCTION guard.check_flags_at_commit();

DROP FUNCTION guard.refresh_call_flags(bigint[], text);

-- I3, I4: correct the booking flags of the given calls from their active appointments
-- (guard.call_flags_to_correct derives them). Every path that can unbook a call derives its flags
-- here (a new appointment only ever books: see sync_flags_after_appointment_insert).
--   lost_from     calls that just lost an active appointment (see guard.call_flags_to_correct)
--   audit_reason  the calls were written by someone else (the application, a legacy load): each
--                 correction is audited with before and after, and one alert per company raised
--   check_only    count the calls that would change, change nothing
-- Three statements for three modes, not one with every mode's branches: a one-row appointment
-- cancel or delete (audit_reason NULL, the everyday path) then runs a plain UPDATE and never
-- initialises the audit and alert inserts it would not use (bench/instructions.py).
-- SECURITY DEFINER: the application's writes fire it (through its triggers) and it writes the
-- correction audit and alerts, which the application may not write itself.
CREATE FUNCTION guard.refresh_call_flags(
    call_ids bigint[],
    lost_from bigint[] DEFAULT '{}',
    audit_reason text DEFAULT NULL,
    check_only boolean DEFAULT FALSE
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compiles this function's large statements for longer than they run (bench/triggers.py:
-- a 10 000-row delete took 1.7 s with JIT, 0.3 s without).
SET jit = off
-- Custom plans re-plan the big statement on every call, and PostgreSQL kept choosing them: a
-- one-row appointment update or delete spent about 5.7 million of its 7.5 million instructions
-- planning (bench/instructions.py). The generic plan is index lookups joined by nested loops,
-- linear in the number of calls (a 10 000-row delete: 15 % more instructions, no worse shape).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    differing integer;
BEGIN
    -- A session with a tenant set may only touch that tenant's calls.
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids) AND c.company_id IS DISTINCT FROM guard.current_company();
    END IF;
    -- Lock the calls first, in id order, and look at their appointments in the next statement:
    -- under READ COMMITTED its snapshot sees every appointment committed by a writer we waited
    -- for, so concurrent writers cannot leave a call with flags derived from a stale view
    -- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking.
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    IF check_only THEN
        SELECT count(*) INTO differing FROM guard.call_flags_to_correct(call_ids, lost_from);
        RETURN differing;
    END IF;

    IF audit_reason IS NULL THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            -- A correction that leaves a booking claim without an appointment standing (a
            -- phantom booking: outcome booked, now made = false) keeps the call's updated_at:
            -- the grace period counts from the claim, and restarting it hid the phantom from
            -- detection for another grace period after every reconcile (guard db validate).
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(call_ids, lost_from) AS f
        WHERE c.id = f.id;
        GET DIAGNOSTICS differing = ROW_COUNT;
        RETURN differing;
    END IF;

    -- RETURNING f.*: the FROM side holds each call's flags as they were before this UPDATE.
    WITH changed AS (
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE  -- as above: a phantom's grace period is not restarted
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(call_ids, lost_from) AS f
        WHERE c.id = f.id
        RETURNING f.*
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason, actor
        )
        SELECT
            'I3_appointment_flags',
            ch.company_id,
            'call',
            ch.id,
            jsonb_build_object(
                'appointment_made', ch.old_made,
                'appointment_link_status', ch.old_link_status,
                'appointment_linked_at', ch.old_linked_at,
                'session_outcome', ch.old_outcome,
                'booking_failed', ch.old_failed,
                'booking_confirmed', ch.old_confirmed
            ),
            jsonb_build_object(
                'appointment_made', ch.new_made,
                'appointment_link_status', ch.new_link_status,
                'appointment_linked_at', ch.new_linked_at,
                'session_outcome', ch.new_outcome,
                'booking_failed', ch.new_failed,
                'booking_confirmed', ch.new_confirmed
            ),
            audit_reason,
            session_user  -- who wrote: current_user is the owner here (SECURITY DEFINER)
        FROM changed AS ch
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

DROP FUNCTION guard.call_flags_to_correct(bigint[], boolean);

-- I3, I4: the calls among call_ids whose booking flags differ from what their active appointments
-- say, with the flags they have (old_*) and the flags they should have (new_*). The one
-- definition of the derived flags: guard.refresh_call_flags corrects, audits or counts with it.
--   lost_from  calls that just lost an active appointment: with none left, a booked outcome
--              becomes appointment_cancelled and the booking is no longer confirmed
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked
-- outcome without an appointment is left alone: it is legitimate during the grace period
-- (detection's job).
-- One SELECT, LANGUAGE sql, STABLE, no SET clause, not SECURITY DEFINER: the planner inlines it
-- into the statement that calls it, so it costs what the same SQL written in place costs.
-- The calls are a join with unnest(), not `id = ANY (call_ids)` per row: in a cached generic
-- plan the array is a parameter, searched linearly for every row (bench/triggers.py
-- --generic-plans: a 10 000-row delete took 2.4x as long).
CREATE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost_from bigint[])
RETURNS TABLE (
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
                WHEN s.lost_one AND s.session_outcome = 'appointment_booked'
                    THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (s.lost_one AND NOT s.has_active) AS new_confirmed
        FROM (
            SELECT
                c.id,
                c.company_id,
                c.appointment_made,
                c.appointment_link_status,
                c.appointment_linked_at,
                c.session_outcome,
                c.booking_failed,
                c.booking_confirmed,
                t.lost_one,
                EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = c.id
                        AND a.company_id = c.company_id
                        AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
                ) AS has_active
            FROM (
                SELECT u.id, pg_catalog.bool_or(u.lost) AS lost_one
                FROM (
                    SELECT x.id, FALSE AS lost FROM pg_catalog.unnest(call_ids) AS x (id)
                    UNION ALL
                    SELECT x.id, TRUE AS lost FROM pg_catalog.unnest(lost_from) AS x (id)
                ) AS u
                GROUP BY u.id
                HAVING NOT pg_catalog.bool_and(u.lost)  -- lost_from is a subset of call_ids
            ) AS t
            INNER JOIN public.calls AS c ON t.id = c.id
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
            'guard.refresh_call_flags(bigint[], bigint[], text, boolean)',
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
$$;

-- Ownership and privileges of every Booking Guard object, from guard.role_names (see
-- guard.apply_grants). A DO block, not a SELECT: yoyo prints the rows a migration's SELECT
-- returns.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
