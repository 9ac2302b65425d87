-- guard.rollout_set and guard.rollout_clear: the one way every client rolls a rule out company
-- by company. What each writes and returns; every refusal changes nothing; both boundaries of
-- the percentage; a cleared row keeps the other setting's override.
BEGIN;
SELECT plan(31);

INSERT INTO companies (id, name)
SELECT
    g,
    'company ' || g
FROM generate_series(1, 40) AS g;

CREATE FUNCTION pg_temp.overrides() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(
        concat_ws(':', company_id, coalesce(stage, '-'), coalesce(mode, '-')), ' '
        ORDER BY company_id
    ), '')
    FROM guard.rule_company_stages
$$;

-- Named companies.
SELECT is(
    guard.rollout_set('I3_appointment_flags', 'mode', 'reject', ARRAY[3, 1, 3]::bigint[]),
    ARRAY[1, 3]::bigint[],
    'named companies get the override, each once, in order'
);
SELECT is(pg_temp.overrides(), '1:-:reject 3:-:reject', 'the overrides are written');
SELECT is(
    guard.rollout_set('I3_appointment_flags', 'stage', 'observe', ARRAY[3]::bigint[]),
    ARRAY[3]::bigint[],
    'a stage override beside a mode override of the same company'
);
SELECT is(pg_temp.overrides(), '1:-:reject 3:observe:reject', 'one row holds both');

-- A percentage: the companies whose rollout bucket is below it, both boundaries.
SELECT is(
    guard.rollout_set('I3_appointment_flags', 'mode', 'reject', NULL, 0),
    '{}'::bigint[],
    '0 % reaches no company'
);
SELECT is(
    guard.rollout_set('I3_appointment_flags', 'mode', 'correct', NULL, 50),
    (
        SELECT array_agg(id ORDER BY id) FROM companies
        WHERE guard.rollout_bucket(id) < 50
    ),
    '50 % reaches the companies whose bucket is below 50'
);
SELECT is(
    guard.rollout_set('I3_appointment_flags', 'mode', 'correct', NULL, 100),
    (SELECT array_agg(id ORDER BY id) FROM companies),
    '100 % reaches every company'
);

-- The rule's own value.
SELECT is(
    guard.rollout_set('I3_appointment_flags', 'mode', 'reject'),
    '{}'::bigint[],
    'without companies or a percentage the rule itself is set'
);
SELECT is(
    (
        SELECT mode FROM guard.rules
        WHERE id = 'I3_appointment_flags'
    ),
    'reject',
    'the rule''s own mode changed'
);

-- Refusals change nothing.
CREATE TEMP TABLE before AS SELECT pg_temp.overrides() AS overrides;
SELECT throws_ok(
    $$SELECT guard.rollout_set('no_such_rule', 'mode', 'reject', ARRAY[1]::bigint[])$$,
    '42704', 'rule no_such_rule does not exist', 'an unknown rule'
);
SELECT throws_like(
    $$SELECT guard.rollout_set('I5_tenant_link', 'mode', 'reject', ARRAY[1]::bigint[])$$,
    'rule I5_tenant_link cannot be rolled out by company%', 'a rule whose check reads no company'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'severity', 'high', ARRAY[1]::bigint[])$$,
    '22023', 'setting must be stage or mode, not ''severity''', 'an unknown setting'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'strict', ARRAY[1]::bigint[])$$,
    '22023', 'mode must be one of correct, reject, not ''strict''', 'an unknown mode'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', NULL, ARRAY[1]::bigint[])$$,
    '22023', 'mode must be one of correct, reject, not NULL', 'a NULL value'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'reject', ARRAY[1]::bigint[], 10)$$,
    '22023', 'give company ids or a percentage, not both', 'companies and a percentage'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'reject', '{}'::bigint[])$$,
    '22023', 'name at least one company, and no NULL id', 'an empty list'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'reject', ARRAY[1, NULL]::bigint[])$$,
    '22023', 'name at least one company, and no NULL id', 'a NULL company id'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'reject', NULL, 101)$$,
    '22023', 'percent must be between 0 and 100, not 101', 'a percentage above 100'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'reject', NULL, -1)$$,
    '22023', 'percent must be between 0 and 100, not -1', 'a percentage below 0'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'mode', 'reject', ARRAY[1, 99, 98]::bigint[])$$,
    '23503', 'company 98, 99 does not exist; nothing changed', 'unknown companies, named'
);
SELECT throws_ok(
    $$SELECT guard.rollout_set(
        'I3_appointment_flags', 'mode', 'reject', ARRAY(SELECT generate_series(101, 107))::bigint[]
    )$$,
    '23503', 'company 101, 102, 103, 104, 105 and 2 more does not exist; nothing changed',
    'many unknown companies: five named, the rest counted'
);
SELECT is(pg_temp.overrides(), (SELECT overrides FROM before), 'no refusal changed anything');

-- A rule with constraints: its own stage follows them.
UPDATE guard.rules SET constraint_names = '{guard_calls_direction_check}'
WHERE id = 'I3_appointment_flags';
SELECT throws_ok(
    $$SELECT guard.rollout_set('I3_appointment_flags', 'stage', 'enforce')$$,
    '55000', 'the stage of I3_appointment_flags follows its constraints (guard db validate)',
    'the own stage of a rule with constraints'
);
UPDATE guard.rules SET constraint_names = '{}'
WHERE id = 'I3_appointment_flags';

-- Clearing: a row left without an override goes, one that overrides the other setting stays.
SELECT guard.rollout_set('I3_appointment_flags', 'stage', 'observe', ARRAY[1, 2]::bigint[]);
DELETE FROM guard.rule_company_stages
WHERE company_id > 3 OR (company_id = 2 AND stage IS NULL);
UPDATE guard.rule_company_stages SET mode = NULL
WHERE company_id = 2;
SELECT is(
    pg_temp.overrides(), '1:observe:correct 2:observe:- 3:observe:correct',
    'before clearing: stage and mode overrides'
);
SELECT is(
    guard.rollout_clear('I3_appointment_flags', 'mode', ARRAY[1]::bigint[]),
    ARRAY[1]::bigint[],
    'clearing a named company''s mode returns it'
);
SELECT is(
    pg_temp.overrides(), '1:observe:- 2:observe:- 3:observe:correct',
    'its stage override stays'
);
SELECT is(
    guard.rollout_clear('I3_appointment_flags', 'stage'),
    ARRAY[1, 2, 3]::bigint[],
    'clearing every company''s stage returns the companies that had one'
);
SELECT is(pg_temp.overrides(), '3:-:correct', 'rows with nothing left go, the others stay');
SELECT is(
    guard.rollout_clear('I3_appointment_flags', 'stage', ARRAY[3]::bigint[]),
    '{}'::bigint[],
    'clearing what is not overridden returns no company'
);
SELECT throws_ok(
    $$SELECT guard.rollout_clear('no_such_rule', 'mode')$$,
    '42704', 'rule no_such_rule does not exist', 'clearing an unknown rule'
);
SELECT throws_ok(
    $$SELECT guard.rollout_clear('I3_appointment_flags', 'mode', ARRAY[99]::bigint[])$$,
    '23503', 'company 99 does not exist; nothing changed', 'clearing an unknown company'
);

SELECT * FROM finish();
ROLLBACK;
