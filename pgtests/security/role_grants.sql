-- What each role may do is data (guard.role_grants) that guard.apply_grants grants: a row added
-- is granted under the role's configured name, with its columns only; a row naming something
-- that does not exist is refused when written (a typo in a migration cannot pass unnoticed);
-- the privileges are a closed list and names are resolved, never spliced, so a hostile row
-- grants nothing (security/role_grants_allow_list.sql generates them). Everything is rolled back.
BEGIN;
SELECT plan(10);

-- The row added and granted in one statement (a DO block), which must fail with check_violation.
CREATE FUNCTION pg_temp.refused_when_applied(
    kind text, type text, name text, privileges text, columns text, description text
) RETURNS text LANGUAGE sql AS $fn$
    SELECT throws_ok(
        format(
            $do$DO $$ BEGIN
                INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns)
                VALUES (%L, %L, %L, %L, %L);
                PERFORM guard.apply_grants();
            END $$$do$,
            kind, type, name, privileges, columns
        ),
        '23514', NULL, description
    )
$fn$;

SELECT ok(
    NOT has_function_privilege('guard_reporting', 'guard.role(text)', 'EXECUTE'),
    'reporting may not execute guard.role before a row says so'
);
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges)
VALUES ('reporting', 'FUNCTION', 'guard.role(text)', '{EXECUTE}');
SELECT lives_ok($$SELECT guard.apply_grants()$$, 'apply_grants grants the new row');
SELECT ok(
    has_function_privilege('guard_reporting', 'guard.role(text)', 'EXECUTE'),
    'reporting may execute it now'
);

INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns)
VALUES ('reporting', 'TABLE', 'guard.breaker_state', '{SELECT}', '{key}');
SELECT guard.apply_grants();
SELECT ok(
    has_column_privilege('guard_reporting', 'guard.breaker_state', 'key', 'SELECT')
    AND NOT has_table_privilege('guard_reporting', 'guard.breaker_state', 'SELECT'),
    'a row with columns grants those columns, not the table'
);

-- Each bad row is added and granted in one statement that fails, so it goes with it.
SELECT pg_temp.refused_when_applied(
    'application', 'FUNCTION', 'guard.no_such_function(text)', '{EXECUTE}', NULL,
    'a row naming a function that does not exist is refused when written'
);
SELECT pg_temp.refused_when_applied(
    'reporting', 'TABLE', 'guard.settings TO PUBLIC; --', '{SELECT}', NULL,
    'a name with SQL in it is resolved as a name (and refused), never spliced'
);
SELECT pg_temp.refused_when_applied(
    'reporting', 'TABLE', 'guard.role_names', '{SELECT}', '{"kind) ON guard.alerts TO PUBLIC; --"}',
    'a column name with SQL in it is looked up as one name (and refused)'
);

SELECT throws_ok(
    $$INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges)
      VALUES ('reporting', 'TABLE', 'guard.settings', '{"SELECT ON guard.alerts TO PUBLIC; --"}')$$,
    '23514', NULL,
    'a privilege outside the closed list is refused by the table'
);
SELECT ok(
    NOT has_table_privilege('public', 'guard.alerts', 'SELECT')
    AND NOT has_table_privilege('public', 'guard.settings', 'SELECT'),
    'and none of them granted anything to PUBLIC'
);
SELECT throws_ok(
    $$INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges)
      VALUES ('nobody', 'SCHEMA', 'guard', '{USAGE}')$$,
    '23514', NULL,
    'a role kind guard.role_names does not know is refused'
);

SELECT * FROM finish();
ROLLBACK;
