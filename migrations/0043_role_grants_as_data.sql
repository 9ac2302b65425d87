-- 0043_role_grants_as_data: what each kind of role may do becomes data, guard.role_grants, which
-- guard.apply_grants reads, instead of lists in the function's body (restated by every migration
-- that granted something new). A migration that grants a role something adds a row and calls
-- guard.apply_grants. The grants themselves do not change.
-- Locks: none on existing tables (a new table, a function replaced).

-- What each kind of Booking Guard role may do beyond what it owns: one row per privilege set on
-- one object, read by guard.apply_grants, which grants it to the role guard.role_names names.
-- Data, not code: a migration that gives a role a new function adds a row (and calls
-- guard.apply_grants) instead of restating the whole grant function. object_name is written as
-- GRANT takes it (a function with its argument types) and is resolved through regnamespace,
-- regclass or regprocedure when granted, so a name that does not exist fails the migration;
-- columns NULL means the whole table.
CREATE TABLE guard.role_grants (
    role_kind text NOT NULL REFERENCES guard.role_names (kind),
    object_type text NOT NULL CHECK (object_type IN ('SCHEMA', 'TABLE', 'FUNCTION')),
    object_name text NOT NULL,
    privileges text[] NOT NULL CHECK (
        cardinality(privileges) > 0
        AND privileges <@ ARRAY['USAGE', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'EXECUTE']
    ),
    columns text[] CHECK (object_type = 'TABLE' OR columns IS NULL),
    PRIMARY KEY (role_kind, object_type, object_name, privileges)
);

COMMENT ON TABLE guard.role_grants IS
'Privileges guard.apply_grants grants to each kind of Booking Guard role (see docs/security.md).';

-- The privileges of the owner, application, reporting and reviewer roles (guard.role_grants),
-- granted by guard.apply_grants. docs/security.md describes each role's rights in prose.

-- The owner role: what its SECURITY DEFINER functions, detection, reconciliation and the jobs
-- read and correct on the application's tables.
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns) VALUES
('owner', 'TABLE', 'public.calls', '{SELECT,UPDATE}', NULL),
('owner', 'TABLE', 'public.appointments', '{SELECT,UPDATE}', NULL),
('owner', 'TABLE', 'public.companies', '{SELECT}', NULL);

-- The application: its own booking tables, the settings its triggers read, and the functions
-- it calls (directly, or through the triggers on calls and appointments).
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns) VALUES
('application', 'SCHEMA', 'guard', '{USAGE}', NULL),
('application', 'TABLE', 'public.companies', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.customers', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.services', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.calls', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.appointments', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'guard.settings', '{SELECT}', NULL),
('application', 'TABLE', 'guard.rules', '{SELECT}', NULL),
-- The calls triggers run with the writer's rights: they record a contradicting write of the
-- booking flags for the commit-time check, and nothing else (no reading or removing one).
('application', 'TABLE', 'guard.flag_checks_at_commit', '{INSERT}', '{call_ids,written_by}'),
('application', 'FUNCTION', 'guard.setting(text)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.current_company()', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.validate_booking(bigint, bigint, text)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION',
    'guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)',
    '{EXECUTE}', NULL
),
('application', 'FUNCTION', 'guard.rollback_booking(bigint, text, jsonb)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.check_call(bigint)', '{EXECUTE}', NULL),
-- the derived booking flags, read in place by the appointment triggers (invoker rights: they
-- update calls as the application would)
('application', 'FUNCTION', 'guard.call_flags_to_correct(bigint[], boolean)', '{EXECUTE}', NULL),
-- "active appointment", inlined into the statements that ask (an inlined function still needs
-- EXECUTE)
('application', 'FUNCTION', 'guard.is_active_appointment(text, anyelement)', '{EXECUTE}', NULL),
-- the stored direction, inlined into the normaliser that runs with the writer's rights
('application', 'FUNCTION', 'guard.normalised_direction(text)', '{EXECUTE}', NULL),
-- the booking journal (guard.booking_attempts), written only through these
('application', 'FUNCTION', 'guard.begin_booking_attempt(bigint, bigint)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION', 'guard.complete_booking_attempt(text, bigint, text)', '{EXECUTE}',
    NULL
),
('application', 'FUNCTION', 'guard.fail_booking_attempt(text, text, jsonb)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION', 'guard.unsettled_booking_attempts(integer, integer)', '{EXECUTE}',
    NULL
),
-- breaker history, written behind by the application's breakers (they may not write
-- guard.breaker_events or guard.breaker_state themselves)
('application', 'FUNCTION', 'guard.record_breaker_transitions(jsonb)', '{EXECUTE}', NULL),
-- a circuit evicted from Redis is restored from its last recorded state (they may not read
-- guard.breaker_state themselves)
('application', 'FUNCTION', 'guard.breaker_restore_state(text)', '{EXECUTE}', NULL);

-- Reporting and reviewer: read-only, the BI views and, because most of them are
-- security_invoker, the tables behind them (row-level security limits both to the companies
-- bound to the role, guard.tenant_bindings); never the raw phone numbers. Every detection view
-- (guard.check_*) is granted too, by guard.apply_grants itself, so a new check needs no row.
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns)
SELECT
    k.kind,
    o.object_type,
    o.object_name,
    o.privileges,
    o.columns
FROM (VALUES ('reporting'), ('reviewer')) AS k (kind)
CROSS JOIN (
    VALUES
    ('SCHEMA', 'guard', '{USAGE}'::text[], NULL::text[]),
    ('TABLE', 'guard.daily_report_view', '{SELECT}', NULL),
    ('TABLE', 'guard.kpis', '{SELECT}', NULL),
    ('TABLE', 'guard.validation_latency_daily', '{SELECT}', NULL),
    ('TABLE', 'guard.job_status', '{SELECT}', NULL),
    -- the masking views: the free text the reporting role may not read raw, masked
    ('TABLE', 'guard.calls_report', '{SELECT}', NULL),
    ('TABLE', 'guard.alerts_report', '{SELECT}', NULL),
    ('TABLE', 'guard.review_items_report', '{SELECT}', NULL),
    ('TABLE', 'guard.correction_audit_report', '{SELECT}', NULL),
    ('TABLE', 'guard.daily_reports', '{SELECT}', NULL),
    ('TABLE', 'guard.validation_metrics', '{SELECT}', NULL),
    ('TABLE', 'guard.breaker_events', '{SELECT}', NULL),
    ('TABLE', 'guard.settings', '{SELECT}', NULL),
    ('TABLE', 'guard.jobs', '{SELECT}', NULL),
    ('TABLE', 'guard.job_runs', '{SELECT}', NULL),
    -- the registries: an alert's check_id leads to its check and rule
    ('TABLE', 'guard.rules', '{SELECT}', NULL),
    ('TABLE', 'guard.checks', '{SELECT}', NULL),
    -- read by the security_invoker view check_booking_outcome_unknown
    ('TABLE', 'guard.booking_attempts', '{SELECT}', NULL),
    -- tenants: guard.visible_companies reads the bindings with the reader's rights (a policy
    -- shows each role only its own)
    ('TABLE', 'guard.tenant_bindings', '{SELECT}', NULL),
    ('TABLE', 'public.companies', '{SELECT}', '{id,name}'),
    (
        'TABLE', 'public.appointments', '{SELECT}',
        '{id,company_id,call_id,customer_id,service_id,calcom_v2_booking_id,source,status,'
        'starts_at,ends_at,created_at,updated_at,deleted_at}'
    ),
    ('FUNCTION', 'guard.current_company()', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.setting(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.mask_phone(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.mask_phone_numbers(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.mask_phone_numbers_json(jsonb)', '{EXECUTE}', NULL),
    -- tenants: the row-level security policies and the masking views call it as the reader
    ('FUNCTION', 'guard.visible_companies()', '{EXECUTE}', NULL),
    -- the detection views call it
    ('FUNCTION', 'guard.is_active_appointment(text, anyelement)', '{EXECUTE}', NULL)
) AS o (object_type, object_name, privileges, columns);

-- Free text: the reviewer reads it whole (it works the queue: calls the customer back, finds the
-- booking by its uid); the reporting role every other column, and the free text masked through
-- the masking views above.
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns) VALUES
(
    'reporting', 'TABLE', 'public.calls', '{SELECT}',
    '{id,company_id,retell_call_id,status,direction,customer_id,customer_link_status,'
    'customer_link_method,customer_link_confidence,customer_linked_at,session_outcome,'
    'appointment_made,appointment_link_status,appointment_linked_at,booking_id,'
    'booking_confirmed,booking_failed,requires_manual_processing,created_at,updated_at}'
),
(
    'reporting', 'TABLE', 'guard.alerts', '{SELECT}',
    '{id,fingerprint,check_id,company_id,entity_type,entity_id,severity,message,status,'
    'occurrences,first_seen_at,last_seen_at,resolved_at,resolution,delivered_at}'
),
(
    'reporting', 'TABLE', 'guard.review_items', '{SELECT}',
    '{id,company_id,call_id,appointment_id,reason,priority,status,created_at,claimed_at,'
    'closed_at,false_positive,claimed_by_role,closed_by_role}'
),
(
    'reporting', 'TABLE', 'guard.correction_audit', '{SELECT}',
    '{id,rule_id,company_id,entity_type,entity_id,reason,actor,corrected_at}'
),
(
    'reviewer', 'TABLE', 'public.calls', '{SELECT}',
    '{id,company_id,retell_call_id,status,direction,customer_id,customer_link_status,'
    'customer_link_method,customer_link_confidence,customer_linked_at,session_outcome,'
    'appointment_made,appointment_link_status,appointment_linked_at,booking_id,'
    'booking_details,booking_confirmed,booking_failed,booking_failure_reason,'
    'requires_manual_processing,created_at,updated_at}'
),
('reviewer', 'TABLE', 'guard.alerts', '{SELECT}', NULL),
('reviewer', 'TABLE', 'guard.review_items', '{SELECT}', NULL),
('reviewer', 'TABLE', 'guard.correction_audit', '{SELECT}', NULL),
-- The reviewer works the review queue of its companies (review_claim and review_close run with
-- its rights, under row-level security). claimed_by and closed_by are its free-text labels; the
-- login is recorded in claimed_by_role and closed_by_role by a trigger, not granted.
(
    'reviewer', 'TABLE', 'guard.review_items', '{UPDATE}',
    '{status,claimed_by,claimed_at,closed_by,closed_at,note,false_positive}'
),
('reviewer', 'FUNCTION', 'guard.review_claim(text, integer)', '{EXECUTE}', NULL),
(
    'reviewer', 'FUNCTION', 'guard.review_close(bigint, text, text, text, boolean)', '{EXECUTE}',
    NULL
);

-- (Re)apply Booking Guard's ownership and privileges: every object in schema guard is handed to
-- the owner role, PUBLIC loses EXECUTE on the guard functions, and each kind of role gets what
-- guard.role_grants lists (and every detection view, guard.check_*, for reporting and
-- reviewer), under the names guard.role_names gives them. Every migration that creates or
-- re-creates an object in schema guard ends by calling it, so ownership and grants survive DROP
-- and CREATE (CREATE OR REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's
-- own grants away (guard db verify reports those). Run by the migrating user, a member of the
-- owner role.
CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    owner_role text := guard.role('owner');
    reader text;
    obj record;
    granted record;
    target text;
    column_list text;
    privilege_list text;
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

    -- What each kind of role may do: guard.role_grants. The object names are resolved through
    -- the reg* types (a name that does not exist fails here) and printed by them, quoted.
    FOR granted IN
        SELECT n.role_name, g.object_type, g.object_name, g.privileges, g.columns
        FROM guard.role_grants AS g
        INNER JOIN guard.role_names AS n ON g.role_kind = n.kind
        ORDER BY g.role_kind, g.object_type, g.object_name, g.privileges
    LOOP
        target := CASE granted.object_type
            WHEN 'SCHEMA' THEN 'SCHEMA ' || granted.object_name::regnamespace::text
            WHEN 'TABLE' THEN 'TABLE ' || granted.object_name::regclass::text
            ELSE 'FUNCTION ' || granted.object_name::regprocedure::text
        END;
        -- privileges are words from a closed list (guard.role_grants' CHECK); columns quoted
        column_list := (
            SELECT ' (' || string_agg(format('%I', c.name), ', ' ORDER BY c.n) || ')'
            FROM unnest(granted.columns) WITH ORDINALITY AS c (name, n)
        );
        privilege_list := (
            SELECT string_agg(p.privilege || coalesce(column_list, ''), ', ' ORDER BY p.n)
            FROM unnest(granted.privileges) WITH ORDINALITY AS p (privilege, n)
        );
        EXECUTE format('GRANT %s ON %s TO %I', privilege_list, target, granted.role_name);
    END LOOP;

    -- Every detection view, by its name: a check added later needs no row in guard.role_grants.
    FOREACH reader IN ARRAY ARRAY[guard.role('reporting'), guard.role('reviewer')] LOOP
        FOR obj IN
            SELECT c.oid::regclass::text AS object_name
            FROM pg_class AS c
            WHERE
                c.relnamespace = 'guard'::regnamespace
                AND c.relkind = 'v'
                AND c.relname LIKE 'check\_%'
            ORDER BY 1
        LOOP
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj.object_name, reader);
        END LOOP;
    END LOOP;
END;
$$;

-- The same grants, now from guard.role_grants.
SELECT guard.apply_grants();
