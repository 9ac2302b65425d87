-- Set-up shared by the pgTAP files of pgtests/, which cannot include a file (pytest runs them
-- through psycopg, not psql). Loaded into the test database before them: into each fresh clone
-- by tests/pgtap/test_pgtap.py, and once before pg_prove (docs/testing.md). Not Booking Guard's:
-- schema pgtap_setup, gone with the scratch database.
CREATE SCHEMA IF NOT EXISTS pgtap_setup;

-- Calls first_id to last_id of company 1 as a legacy load left them, the triggers (the
-- normaliser among them) bypassed: unlinked, created from first_created on, `step` apart, with
-- `direction` or none (then the direction's CHECK and NOT NULL are dropped for the rest of the
-- test's transaction). Calls first_id to booked_up_to get an appointment of the same id, active,
-- though their flags do not show it (each offends flags_contradict_appointments).
CREATE OR REPLACE FUNCTION pgtap_setup.legacy_calls(
    first_id bigint,
    last_id bigint,
    first_created timestamptz,
    step interval DEFAULT '0',
    direction text DEFAULT NULL,
    booked_up_to bigint DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    replication_role text := current_setting('session_replication_role');
BEGIN
    IF legacy_calls.direction IS NULL THEN
        ALTER TABLE public.calls DROP CONSTRAINT IF EXISTS guard_calls_direction_check;
        ALTER TABLE public.calls ALTER COLUMN direction DROP NOT NULL;
    END IF;
    PERFORM set_config('session_replication_role', 'replica', TRUE);
    INSERT INTO public.calls (
        id, company_id, retell_call_id, direction, customer_link_status, created_at
    )
    SELECT
        g,
        1,
        'c' || g,
        legacy_calls.direction,
        'unlinked',
        first_created + (g - first_id) * step
    FROM generate_series(first_id, last_id) AS g;
    INSERT INTO public.appointments (id, company_id, call_id)
    SELECT
        g,
        1,
        g
    FROM generate_series(first_id, booked_up_to) AS g;
    PERFORM set_config('session_replication_role', replication_role, TRUE);
END;
$$;

-- For the rest of the test's transaction, rows are written as a legacy load or a bypassing
-- writer would: the triggers off (session_replication_role = replica, until the file sets it
-- back), the constraints that would refuse them dropped (the direction's CHECK and NOT NULL, an
-- appointment's company that must be its call's), and the ids the sequences give from 10,000
-- on, clear of the file's own.
CREATE OR REPLACE FUNCTION pgtap_setup.legacy_load()
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    ALTER TABLE public.calls ALTER COLUMN id RESTART WITH 10000;
    ALTER TABLE public.appointments ALTER COLUMN id RESTART WITH 10000;
    ALTER TABLE public.calls DROP CONSTRAINT guard_calls_direction_check;
    ALTER TABLE public.calls ALTER COLUMN direction DROP NOT NULL;
    ALTER TABLE public.appointments DROP CONSTRAINT guard_appointments_call_company_fkey;
    PERFORM set_config('session_replication_role', 'replica', TRUE);
END;
$$;

-- An adopted calls table, whose old rows its CHECKs may refuse: pgtap_setup.drop_calls_checks
-- drops the CHECKs named (and, with the direction's, its NOT NULL) so that such rows can be
-- written, and pgtap_setup.calls_checks_not_valid puts them back as they were defined, NOT
-- VALID, as `guard db apply` leaves them on an adopted table.
CREATE OR REPLACE FUNCTION pgtap_setup.drop_calls_checks(VARIADIC names text[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    check_name text;
BEGIN
    CREATE TEMPORARY TABLE IF NOT EXISTS dropped_calls_checks (conname text, def text);
    INSERT INTO dropped_calls_checks (conname, def)
    SELECT
        c.conname,
        pg_get_constraintdef(c.oid)
    FROM pg_constraint AS c
    WHERE c.conrelid = 'public.calls'::regclass AND c.conname = ANY(names);
    FOREACH check_name IN ARRAY names LOOP
        EXECUTE format('ALTER TABLE public.calls DROP CONSTRAINT %I', check_name);
    END LOOP;
    IF 'guard_calls_direction_check' = ANY(names) THEN
        ALTER TABLE public.calls ALTER COLUMN direction DROP NOT NULL;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION pgtap_setup.calls_checks_not_valid()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    c record;
BEGIN
    FOR c IN DELETE FROM dropped_calls_checks RETURNING * LOOP
        EXECUTE format('ALTER TABLE public.calls ADD CONSTRAINT %I %s NOT VALID', c.conname, c.def);
    END LOOP;
END;
$$;

-- What a DBA's own checks are tried on: companies 1 and 2, a call of each with a phone number,
-- an appointment of each call without a start, and the rule own_rule for the checks to name.
CREATE OR REPLACE FUNCTION pgtap_setup.own_check_tenants()
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO public.companies (id, name) VALUES (1, 'A'), (2, 'B');
    INSERT INTO public.calls (id, company_id, retell_call_id, from_number)
    VALUES (1, 1, 'c1', '+491701234567'), (2, 2, 'c2', '+491707654321');
    INSERT INTO public.appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at)
    VALUES (1, 1, 1, 'u1', NULL), (2, 2, 2, 'u2', NULL);
    INSERT INTO guard.rules (id, severity, description, remedy)
    VALUES ('own_rule', 'low', 'A rule of the DBA''s own.', 'report');
$$;

-- Calls first_id to last_id of company company_id, retell_call_id retell_prefix || id, the given
-- session_outcome, every other column as the application leaves it on insert.
CREATE OR REPLACE FUNCTION pgtap_setup.company_calls(
    company_id bigint, first_id bigint, last_id bigint, retell_prefix text,
    session_outcome text DEFAULT NULL
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO public.calls (id, company_id, retell_call_id, session_outcome)
    SELECT
        g,
        company_calls.company_id,
        company_calls.retell_prefix || g,
        company_calls.session_outcome
    FROM generate_series(company_calls.first_id, company_calls.last_id) AS g;
$$;

-- An active appointment from the voice agent as an adopted database or a legacy load left it, the
-- triggers off: its call's flags are not derived, and the call may be another company's (a row
-- the composite foreign key, added later, refuses when written).
CREATE OR REPLACE FUNCTION pgtap_setup.loaded_appointment(
    id bigint, company_id bigint, call_id bigint, booking_uid text
)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    replication_role text := current_setting('session_replication_role');
BEGIN
    PERFORM set_config('session_replication_role', 'replica', TRUE);
    INSERT INTO public.appointments (id, company_id, call_id, source, status, calcom_v2_booking_id)
    VALUES (
        loaded_appointment.id,
        loaded_appointment.company_id,
        loaded_appointment.call_id,
        'retell_webhook',
        'scheduled',
        loaded_appointment.booking_uid
    );
    PERFORM set_config('session_replication_role', replication_role, TRUE);
END;
$$;

-- A call's booking flags in one line, made/link status/linked/outcome/failed, for is():
-- 'true/linked/true/appointment_booked/false' for a booked call.
CREATE OR REPLACE FUNCTION pgtap_setup.call_flags(call_id bigint)
RETURNS text
LANGUAGE sql
AS $$
    SELECT concat_ws(
        '/', c.appointment_made::text, coalesce(c.appointment_link_status, '<NULL>'),
        (c.appointment_linked_at IS NOT NULL)::text, c.session_outcome, c.booking_failed::text
    )
    FROM public.calls AS c
    WHERE c.id = call_flags.call_id
$$;

-- A DBA's own check view guard.check_<check_name>, as a DBA writes one: the contract's nine
-- columns over public.appointments AS a, severity low, the rows where condition holds (every
-- row when it is NULL), detail the given expression.
CREATE OR REPLACE FUNCTION pgtap_setup.appointment_check(
    check_name text,
    rule_id text,
    condition text DEFAULT 'a.starts_at IS NULL',
    detail text DEFAULT 'jsonb_build_object(''status'', a.status)'
)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format(
        'CREATE VIEW guard.%I WITH (security_invoker = TRUE) AS SELECT %L::text AS check_id,'
        ' a.company_id, %L::text AS entity_type, a.id AS entity_id, a.call_id,'
        ' %L::text AS severity, a.created_at AS observed_at, %s AS detail, %L::text AS rule_id'
        ' FROM public.appointments AS a%s',
        'check_' || check_name, check_name, 'appointment', 'low', detail, rule_id,
        coalesce(' WHERE ' || condition, '')
    );
END;
$$;

-- How many checks name the rule: what register_check added for it.
CREATE OR REPLACE FUNCTION pgtap_setup.checks_of_rule(rule_id text)
RETURNS integer
LANGUAGE sql
AS $$
    SELECT count(*)::integer FROM guard.checks AS k WHERE k.rule_id = checks_of_rule.rule_id;
$$;

-- What guard.reconcile (a dry run when dry_run) returns for the actions named, in its order.
CREATE OR REPLACE FUNCTION pgtap_setup.reconciled(actions text[], dry_run boolean DEFAULT FALSE)
RETURNS TABLE (action text, affected integer)
LANGUAGE sql
AS $$
    SELECT r.action, r.affected FROM guard.reconcile(dry_run => reconciled.dry_run) AS r
    WHERE r.action = ANY(reconciled.actions);
$$;

-- Whether any of the roles Booking Guard names by these kinds (guard.role) has any of the
-- privileges on the relation (has_table_privilege's list: 'SELECT, INSERT').
CREATE OR REPLACE FUNCTION pgtap_setup.any_role_may(
    relation text, privileges text, VARIADIC role_kinds text[]
)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT bool_or(has_table_privilege(guard.role(k.kind), any_role_may.relation, any_role_may.privileges))
    FROM unnest(any_role_may.role_kinds) AS k (kind);
$$;
