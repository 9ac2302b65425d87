-- A DBA's own checks are sandboxed (rule detection_health). A bad write is prevented: registering
-- a view that would let a reader past row-level security or its privileges is refused in one
-- error (guard.own_check_bypass), and nothing is registered. An existing bad row is detected: an
-- own check registered before, or altered since, is what guard.own_check_bypass (and so `guard db
-- verify`) names. A check that fails at run time is rolled back alone: the others run, its failure
-- is one check_failed alert (bumped by repeats, resolved once it runs through or is registered
-- again), and check_call's budget for own checks skips them once it is used up. The timing of
-- slow checks and cut passes: tests/db/test_own_checks_sandboxed.py.
BEGIN;
SELECT plan(21);

SELECT pgtap_setup.own_check_tenants();

-- The contract's nine columns over appointments, as a DBA writes them.
SELECT pgtap_setup.appointment_check('confined', 'own_rule');
CREATE VIEW guard.check_owner_rights AS
SELECT * FROM guard.check_confined;
CREATE VIEW guard.check_phone_numbers WITH (security_invoker = TRUE) AS
SELECT
    v.check_id,
    v.company_id,
    v.entity_type,
    v.entity_id,
    v.call_id,
    v.severity,
    v.observed_at,
    jsonb_build_object('number', c.from_number) AS detail,
    v.rule_id
FROM guard.check_confined AS v
INNER JOIN public.calls AS c ON v.call_id = c.id;
CREATE FUNCTION public.every_company() RETURNS SETOF bigint
LANGUAGE sql SECURITY DEFINER AS 'SELECT id FROM public.companies';
CREATE VIEW guard.check_definer_function WITH (security_invoker = TRUE) AS
SELECT * FROM guard.check_confined
WHERE company_id IN (SELECT public.every_company());

-- A bad write is prevented.
SELECT throws_ok(
    $$SELECT guard.register_check('owner_rights', 'own_rule', 'check_owner_rights', 'low', 'x')$$,
    '42P17', NULL, 'a view without security_invoker is refused'
);
SELECT throws_like(
    $$SELECT guard.register_check('phone_numbers', 'own_rule', 'check_phone_numbers', 'low', 'x')$$,
    '%reads public.calls (from_number), which the reporting role%',
    'a view that reads what reporting may not read is refused, naming the column'
);
SELECT throws_like(
    $$SELECT guard.register_check('definer_function', 'own_rule', 'check_definer_function', 'low', 'x')$$,
    '%calls public.every_company(), which runs with its owner''s rights (SECURITY DEFINER)%',
    'a view that calls a SECURITY DEFINER function is refused'
);
ALTER ROLE guard_reporting_checks BYPASSRLS;
SELECT throws_like(
    $$SELECT guard.register_check('confined', 'own_rule', 'check_confined', 'low', 'x')$$,
    '%owned by guard_reporting_checks, which bypasses row-level security (BYPASSRLS)%',
    'no view is registered while the check reader role, which own checks run as, bypasses row-level security'
);
ALTER ROLE guard_reporting_checks NOBYPASSRLS;
SELECT is(
    pgtap_setup.checks_of_rule('own_rule'), 0,
    'the refused views were not registered'
);
SELECT is(
    (
        SELECT pg_get_userbyid(relowner)::text FROM pg_class
        WHERE oid = 'guard.check_owner_rights'::regclass
    ),
    current_user::text,
    'and a refused view keeps its owner'
);
SELECT lives_ok(
    $$SELECT guard.register_check('confined', 'own_rule', 'check_confined', 'low', 'x')$$,
    'a view confined to the reader''s rights is registered'
);

-- An existing bad row is detected.
SELECT is(
    guard.own_check_bypass('guard.check_confined'), NULL,
    'a registered view that bypasses nothing is not named'
);
ALTER VIEW guard.check_confined SET (security_invoker = FALSE);
SELECT matches(
    guard.own_check_bypass('guard.check_confined'), 'security_invoker is not set',
    'an own check altered to run with its owner''s rights is named'
);
ALTER VIEW guard.check_confined SET (security_invoker = TRUE);
INSERT INTO guard.checks (id, rule_id, severity, description, remedy, check_view)
VALUES ('owner_rights', 'own_rule', 'low', 'registered long ago', 'report', 'check_owner_rights');
SELECT results_eq(
    $$SELECT k.id FROM guard.checks AS k
      WHERE k.rule_id = 'own_rule' AND guard.own_check_bypass(('guard.' || k.check_view)::regclass) IS NOT NULL$$,
    $$VALUES ('owner_rights'::text)$$,
    'an own check registered before the rule is named'
);
DELETE FROM guard.checks
WHERE id = 'owner_rights';

-- A check that fails at run time is rolled back alone: check raising, the rows of check
-- confined with the detail given (one that divides by zero on a row fails there).
CREATE FUNCTION pg_temp.raising(detail text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE VIEW guard.check_raising WITH (security_invoker = TRUE) AS SELECT'
        ' %L::text AS check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,'
        ' v.observed_at, %s AS detail, v.rule_id FROM guard.check_confined AS v',
        'raising', detail
    );
END;
$$;
SELECT pg_temp.raising('jsonb_build_object(''x'', 1 / (v.entity_id - 2))');
SELECT guard.register_check('raising', 'own_rule', 'check_raising', 'low', 'x');
SELECT results_eq(
    $$SELECT check_id, offending, status, error FROM guard.run_checks(now() - interval '1 hour', NULL)
      WHERE check_id IN ('confined', 'raising', 'unknown_value') ORDER BY check_id$$,
    $$VALUES ('confined'::text, 2, 'ok'::text, NULL::text), ('raising', NULL, 'failed', 'division by zero'),
        ('unknown_value', 0, 'ok', NULL)$$,
    'in a pass, the failing check alone failed: the shipped and the other own checks ran'
);
SELECT results_eq(
    $$SELECT check_id, severity, entity_type, company_id, details ->> 'check', details ->> 'in', occurrences
      FROM guard.alerts WHERE fingerprint = 'check_failed:check:raising' AND status = 'open'$$,
    $$VALUES ('check_failed'::text, 'high'::text, 'check'::text, NULL::bigint, 'raising'::text, 'pass'::text, 1)$$,
    'its failure is one alert naming the check, of no company'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.alerts
        WHERE check_id = 'confined' AND status = 'open'
    ), 2,
    'the other own check''s alerts were kept'
);
-- check_call runs an own check once a pass has read it within the budget: as one did before
-- the view began to fail
INSERT INTO guard.detection_runs (pass_started_at, check_id, rule_id, duration_ms, offending, opened, repeated, resolved)
VALUES (now(), 'raising', 'own_rule', 1, 0, 0, 0, 0), (now(), 'confined', 'own_rule', 1, 0, 0, 0, 0);
SELECT results_eq(
    $$SELECT offending, status FROM guard.run_checks(NULL, 1) WHERE check_id = 'raising'$$,
    $$VALUES (1, 'ok'::text)$$,
    'a view that fails on one row fails on that row''s call only'
);
SELECT results_eq(
    $$SELECT count(*)::int, count(*) FILTER (WHERE offending IS NULL)::int FROM guard.check_call(2)
      WHERE check_id IN ('raising', 'confined', 'unknown_value')$$,
    $$VALUES (3, 1)$$,
    'and check_call returns the failure (offending NULL) instead of raising'
);
SELECT * FROM guard.detect();
SELECT is(
    (
        SELECT occurrences FROM guard.alerts
        WHERE fingerprint = 'check_failed:check:raising' AND status = 'open'
    ),
    2,
    'a repeat bumps the open alert (de-duplicated like every alert)'
);
SELECT pg_temp.raising('jsonb_build_object(''x'', 1)');
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'check_failed:check:raising'$$,
    $$VALUES ('resolved'::text, 'fixed'::text)$$,
    'a pass that runs it through resolves its failure'
);

-- check_call's budget for own checks.
UPDATE guard.settings SET value = '0'
WHERE key = 'check_call_budget_ms';
SELECT results_eq(
    $$SELECT count(*)::int, count(*) FILTER (WHERE status = 'ok')::int FROM guard.run_checks(NULL, 1)
      WHERE check_id IN ('confined', 'raising')$$,
    $$VALUES (2, 0)$$,
    'with no budget left, check_call skips the own checks'
);
SELECT is_empty(
    $$SELECT check_id FROM guard.run_checks(NULL, 1) WHERE status <> 'ok' AND check_id NOT IN ('confined', 'raising')$$,
    'and runs every shipped one'
);
UPDATE guard.settings SET value = '200'
WHERE key = 'check_call_budget_ms';
SELECT guard.open_check_alert('check_over_budget', 'confined', 'too slow', '{}');
SELECT results_eq(
    $$SELECT status, error LIKE '%left out of check_call%' FROM guard.run_checks(NULL, 1) WHERE check_id = 'confined'$$,
    $$VALUES ('skipped'::text, TRUE)$$,
    'an own check over budget is left out of check_call while its alert is fresh'
);
-- registered again (after making it faster): its over-budget alert is resolved, and only that
SELECT guard.register_check('confined', 'own_rule', 'check_confined', 'low', 'x');
SELECT results_eq(
    $$SELECT check_id, status, resolution FROM guard.alerts
      WHERE check_id IN ('check_over_budget', 'confined') ORDER BY check_id, id$$,
    $$VALUES ('check_over_budget'::text, 'resolved'::text, 'manual'::text),
             ('confined', 'open', NULL), ('confined', 'open', NULL)$$,
    'registering a check again resolves its over-budget alert and leaves every other open alert'
);

SELECT * FROM finish();
ROLLBACK;
