-- A DBA's own checks run as the check reader role (guard.read_own_check), whoever runs the pass:
-- this file runs as a superuser, as `guard check` or pg_cron may. A bad write is prevented:
-- register_check refuses a view that reads what the catalog cannot show (query_to_xml,
-- table_to_xml), a catalog reporting may not read (pg_authid), a file, or that changes something
-- (set_config, an advisory lock, a large object, a booking rolled back). An existing bad row is
-- detected and contained: a registered view altered since into each of those reads nothing the
-- check reader may not read, writes nothing and leaves the session as it was; verify's rule
-- (guard.own_check_bypass) names it; a refused or never registered check view is not granted
-- to reporting by guard.apply_grants; check_call leaves out an own check no pass has read yet.
BEGIN;
SELECT plan(24);

SELECT pgtap_setup.own_check_tenants();
INSERT INTO customers (id, company_id, name, email, phone)
VALUES (1, 1, 'Ann', 'ann@example.org', '+491701111111'), (2, 2, 'Bob', 'bob@example.org', '+491702222222');

-- The contract's nine columns, with what the detail carries as the only part that differs.
CREATE FUNCTION pg_temp.check_view(view_name text, detail text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE VIEW guard.%I WITH (security_invoker = TRUE) AS SELECT'
        ' %L::text AS check_id, a.company_id, ''appointment''::text AS entity_type,'
        ' a.id AS entity_id, a.call_id, ''low''::text AS severity, a.created_at AS observed_at,'
        ' jsonb_build_object(''x'', (%s)::text) AS detail, ''own_rule''::text AS rule_id'
        ' FROM public.appointments AS a WHERE a.starts_at IS NULL',
        view_name, substr(view_name, 7), detail
    );
END;
$$;

SELECT pg_temp.check_view('check_xml_query', $$query_to_xml('SELECT name, email FROM public.customers', TRUE, TRUE, '')$$);
SELECT pg_temp.check_view('check_xml_table', $$table_to_xml('guard.tenant_bindings', TRUE, TRUE, '')$$);
SELECT pg_temp.check_view('check_authid', $$(SELECT count(*) FROM pg_catalog.pg_authid)$$);
SELECT pg_temp.check_view('check_file', $$pg_read_file('postgresql.conf')$$);
SELECT pg_temp.check_view('check_setting', $$set_config('statement_timeout', '0', FALSE)$$);
SELECT pg_temp.check_view('check_lock', $$pg_advisory_lock(4242)$$);
SELECT pg_temp.check_view('check_rollback', $$guard.rollback_booking(a.call_id, 'x')$$);
SELECT pg_temp.check_view('check_fine', $$a.status$$);

-- Each refused view, with the reason register_check gives.
SELECT
    throws_like(
        format($$SELECT guard.register_check(%L, 'own_rule', %L, 'low', 'x')$$, v.id, 'check_' || v.id),
        v.reason,
        v.description
    )
FROM (
    VALUES
    (1, 'xml_query', '%calls query_to_xml(%which reads what a query or name given at run time reads%', 'a view running a query given as text is refused'),
    (2, 'xml_table', '%calls table_to_xml(%', 'a view reading a relation named at run time is refused'),
    (3, 'authid', '%reads pg_authid, which the reporting role%', 'a view reading a catalog reporting may not read is refused, though pg_depend records no such read'),
    (4, 'file', '%calls pg_read_file(%VOLATILE%', 'a view reading a file is refused'),
    (5, 'setting', '%calls set_config(%VOLATILE%', 'a view changing a setting is refused'),
    (6, 'lock', '%calls pg_advisory_lock(bigint)%VOLATILE%', 'a view taking an advisory lock is refused'),
    (7, 'rollback', '%calls guard.rollback_booking(%', 'a view rolling a booking back is refused')
) AS v (n, id, reason, description)
ORDER BY v.n;
SELECT lives_ok(
    $$SELECT guard.register_check('fine', 'own_rule', 'check_fine', 'low', 'x')$$,
    'a view reading what reporting may read is registered'
);
SELECT is(
    pgtap_setup.checks_of_rule('own_rule'), 1,
    'only that one'
);

-- Registered, then altered behind registration into each bad view (as an existing database may
-- hold one): the check reader reads it, whoever runs the pass.
-- The view altered into carrying `detail`, and the query that reads it as the check reader.
CREATE FUNCTION pg_temp.altered_read(detail text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_temp.check_view('check_fine', detail);
    RETURN 'SELECT * FROM guard.read_own_check(''check_fine'', NULL, NULL, NULL, NULL)';
END;
$$;

SELECT throws_like(
    pg_temp.altered_read($$query_to_xml('SELECT name, email FROM public.customers', TRUE, TRUE, '')$$),
    '%permission denied for table customers%',
    'run by a superuser, the query inside it reads as the check reader: refused'
);
SELECT alike(
    guard.own_check_bypass('guard.check_fine'), '%calls query_to_xml(%',
    'and verify''s rule names it'
);
SELECT throws_like(pg_temp.altered_read(v.detail), v.refusal, v.description)
FROM (
    VALUES
    (1, $$(SELECT string_agg(rolname, ',') FROM pg_catalog.pg_authid)$$, '%permission denied for table pg_authid%', 'a catalog reporting may not read is not read'),
    (2, $$pg_read_file('postgresql.conf')$$, '%permission denied for function pg_read_file%', 'nor a file'),
    (3, $$guard.rollback_booking(a.call_id, 'x')$$, '%permission denied for function rollback_booking%', 'nor a booking rolled back')
) AS v (n, detail, refusal, description)
ORDER BY v.n;

SET LOCAL statement_timeout = '5s';
SET LOCAL search_path = public, pg_catalog;
SELECT pg_temp.check_view(
    'check_fine',
    $$set_config('statement_timeout', '0', FALSE) || set_config('search_path', 'pg_temp', FALSE)
      || set_config('booking_guard.company_id', '2', FALSE) || pg_advisory_lock(4242)::text
      || pg_advisory_xact_lock(4243)::text$$
);
CREATE TEMP TABLE held_before AS SELECT guard.advisory_locks_held() AS locks;
SELECT is(
    (SELECT count(*)::int FROM guard.read_own_check('check_fine', NULL, NULL, NULL, NULL)), 2,
    'a view that changes the session is read through'
);
SELECT results_eq(
    $$SELECT current_setting('statement_timeout'), current_setting('search_path'),
             coalesce(current_setting('booking_guard.company_id', TRUE), '')$$,
    $$VALUES ('5s'::text, 'public, pg_catalog'::text, ''::text)$$,
    'and leaves the session''s settings as they were'
);
SELECT is(
    guard.release_advisory_locks_since((SELECT h.locks FROM held_before AS h)), 1,
    'the session lock it took is the one the pass releases after its own checks'
);
SELECT is_empty(
    $$SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()$$,
    'and none is held after that'
);
-- a large object: refused in a read-only transaction from PostgreSQL 16 on, rolled back before
SELECT pg_temp.check_view('check_fine', $$lo_creat(-1)$$);
DO $$
BEGIN
    PERFORM FROM guard.read_own_check('check_fine', NULL, NULL, NULL, NULL);
EXCEPTION WHEN read_only_sql_transaction THEN
    NULL;
END;
$$;
SELECT is(
    (SELECT count(*)::int FROM pg_largeobject_metadata), 0,
    'a view that creates a large object leaves none'
);

-- Grants: only the shipped check views and the registered ones verify's rule passes.
SELECT pg_temp.check_view('check_fine', $$a.status$$);
SELECT guard.apply_grants();
SELECT ok(
    NOT has_table_privilege('guard_reporting', 'guard.check_xml_query', 'SELECT')
    AND NOT has_table_privilege('guard_reviewer', 'guard.check_xml_query', 'SELECT'),
    'a refused view is not granted to reporting or reviewer'
);
SELECT ok(
    has_table_privilege('guard_reporting', 'guard.check_fine', 'SELECT')
    AND has_table_privilege('guard_reporting', 'guard.check_unknown_value', 'SELECT'),
    'a registered one and a shipped one are'
);
SELECT results_eq(
    $$SELECT r.rolsuper, r.rolbypassrls, r.rolcanlogin,
             has_column_privilege(guard.check_reader(), 'public.calls', 'company_id', 'SELECT'),
             has_column_privilege(guard.check_reader(), 'public.calls', 'from_number', 'SELECT'),
             has_table_privilege(guard.check_reader(), 'public.customers', 'SELECT'),
             has_table_privilege(guard.check_reader(), 'guard.alerts', 'INSERT'),
             has_function_privilege(guard.check_reader(), 'guard.rollback_booking(bigint, text, jsonb)', 'EXECUTE')
      FROM pg_roles AS r WHERE r.rolname = guard.check_reader()$$,
    $$VALUES (FALSE, FALSE, FALSE, TRUE, FALSE, FALSE, FALSE, FALSE)$$,
    'the check reader reads what reporting reads and writes nothing'
);

-- check_call: an own check no pass has read within the budget is left out, saying why.
SELECT results_eq(
    $$SELECT status, error LIKE 'not yet read by a detection pass%' FROM guard.run_checks(NULL, 1) WHERE check_id = 'fine'$$,
    $$VALUES ('skipped'::text, TRUE)$$,
    'check_call leaves out an own check no pass has read'
);
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT offending, status FROM guard.run_checks(NULL, 1) WHERE check_id = 'fine'$$,
    $$VALUES (1, 'ok'::text)$$,
    'and runs it once one has, within the budget'
);

SELECT * FROM finish();
ROLLBACK;
