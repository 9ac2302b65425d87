-- guard.register_check: a DBA's own check is registered once its view keeps the contract; each
-- wrong registration is one clear error and writes nothing; registering again updates it; no
-- Booking Guard role but the owner may call it. (That it then runs in detection and survives
-- verify and upgrades: tests/db/test_custom_checks.py.)
BEGIN;
SELECT plan(22);

INSERT INTO guard.rules (id, severity, description, remedy)
VALUES ('calendar_times', 'low', 'An active appointment has its start time.', 'report');
SELECT pgtap_setup.appointment_check('appointment_without_start', 'calendar_times');
-- the same without rule_id, and with entity_id as text
CREATE VIEW guard.check_missing_column AS
SELECT
    check_id,
    company_id,
    entity_type,
    entity_id,
    call_id,
    severity,
    observed_at,
    detail
FROM guard.check_appointment_without_start;
CREATE VIEW guard.check_wrong_type AS
SELECT
    check_id,
    company_id,
    entity_type,
    entity_id::text AS entity_id,
    call_id,
    severity,
    observed_at,
    detail,
    rule_id
FROM guard.check_appointment_without_start;
CREATE VIEW public.check_elsewhere AS SELECT * FROM guard.check_appointment_without_start;

-- each argument NULL alone, the others valid (the view among them): refused before anything else
SELECT
    throws_ok(
        format(
            'SELECT guard.register_check(%s, %s, %s, %s, %s, %s)',
            CASE WHEN n = 1 THEN 'NULL' ELSE quote_literal('appointment_without_start') END,
            CASE WHEN n = 2 THEN 'NULL' ELSE quote_literal('calendar_times') END,
            CASE WHEN n = 3 THEN 'NULL' ELSE quote_literal('check_appointment_without_start') END,
            CASE WHEN n = 4 THEN 'NULL' ELSE quote_literal('low') END,
            CASE WHEN n = 5 THEN 'NULL' ELSE quote_literal('x') END,
            CASE WHEN n = 6 THEN 'NULL' ELSE quote_literal('report') END
        ),
        '22004',
        'register_check needs a check id, a rule, a view, a severity, a description and a remedy',
        format('register_check: NULL as argument %s alone is refused', n)
    )
FROM generate_series(1, 6) AS n;
SELECT throws_ok(
    $$SELECT guard.register_check('Bad Id; --', 'calendar_times', 'check_appointment_without_start', 'low', 'x')$$,
    '22023', NULL, 'a check id that is not a lower-case code is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('appointment_without_start', 'calendar_times', 'appointments', 'low', 'x')$$,
    '22023', NULL, 'a view not named check_* is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('appointment_without_start', 'no_such_rule', 'check_appointment_without_start', 'low', 'x')$$,
    'P0002', NULL, 'an unknown rule is refused'
);
-- a table in schema guard with a check's name and columns is no view
CREATE TABLE guard.check_a_table AS SELECT * FROM guard.check_appointment_without_start WITH NO DATA;
SELECT throws_ok(
    $$SELECT guard.register_check('a_table', 'calendar_times', 'check_a_table', 'low', 'x')$$,
    '42P01', 'view guard.check_a_table does not exist', 'a table named like a check view is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('appointment_without_start', 'calendar_times', 'check_elsewhere', 'low', 'x')$$,
    '42P01', 'view guard.check_elsewhere does not exist', 'a view outside schema guard is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('mine', 'calendar_times', 'check_unknown_value', 'low', 'x')$$,
    '22023', 'guard.check_unknown_value is a view Booking Guard ships', 'a shipped view is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('missing_column', 'calendar_times', 'check_missing_column', 'low', 'x')$$,
    '42804', 'view guard.check_missing_column does not return the columns of a check',
    'a view without a column of the contract is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('wrong_type', 'calendar_times', 'check_wrong_type', 'low', 'x')$$,
    '42804', NULL, 'a view with a column of another type is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('appointment_without_start', 'calendar_times', 'check_appointment_without_start', 'urgent', 'x')$$,
    '23514', NULL, 'a severity outside the known ones is refused'
);
SELECT throws_ok(
    $$SELECT guard.register_check('unknown_value', 'calendar_times', 'check_appointment_without_start', 'low', 'x')$$,
    '23505', 'check unknown_value exists with another view (or none)',
    'a shipped check id is refused'
);
SELECT is(
    pgtap_setup.checks_of_rule('calendar_times'), 0,
    'nothing was registered by the refused calls'
);

SELECT lives_ok(
    $$SELECT guard.register_check('appointment_without_start', 'calendar_times', 'check_appointment_without_start', 'low', 'No start time.')$$,
    'a view keeping the contract is registered'
);
SELECT results_eq(
    $$SELECT rule_id, severity, remedy, check_view, enabled FROM guard.checks WHERE id = 'appointment_without_start'$$,
    $$VALUES ('calendar_times'::text, 'low'::text, 'report'::text, 'check_appointment_without_start'::text, TRUE)$$,
    'as a check of its rule, enabled, remedy report by default'
);
SELECT is(
    (
        SELECT pg_get_userbyid(relowner)::text FROM pg_class
        WHERE oid = 'guard.check_appointment_without_start'::regclass
    ),
    guard.check_reader(),
    'the view is given to the check reader role, which own checks run as'
);
SELECT lives_ok(
    $$SELECT guard.register_check('appointment_without_start', 'calendar_times', 'check_appointment_without_start', 'medium', 'No start time.', 'review')$$,
    'registering again updates it'
);
SELECT is_empty(
    $$SELECT k.kind FROM guard.role_names AS k
      WHERE k.kind <> 'owner' AND has_function_privilege(
          k.role_name, 'guard.register_check(text, text, text, text, text, text)', 'EXECUTE'
      )$$,
    'no Booking Guard role but the owner may register a check'
);

SELECT * FROM finish();
ROLLBACK;
