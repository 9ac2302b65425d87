-- A TABLE row of guard.role_grants names a relation a role can be granted on as a table: a
-- table, a partitioned table, a view or a materialized view in schema guard. Each is accepted and
-- granted; a sequence, an index or a composite type of schema guard is refused when written,
-- with the message naming it. The relations are made here and rolled back with everything else.
BEGIN;
SELECT plan(11);

CREATE TABLE guard.grant_probe_partitioned (id integer) PARTITION BY RANGE (id);
CREATE MATERIALIZED VIEW guard.grant_probe_materialized AS SELECT 1 AS id;
CREATE TYPE guard.grant_probe_composite AS (id integer);

SELECT is(guard.role_grant_refusal('reporting', 'TABLE', relation, '{SELECT}', NULL), NULL, description)
FROM (
    VALUES
    ('guard.alerts', 'a table of schema guard is accepted'),
    ('guard.grant_probe_partitioned', 'a partitioned table of schema guard is accepted'),
    ('guard.alerts_report', 'a view of schema guard is accepted'),
    ('guard.grant_probe_materialized', 'a materialized view of schema guard is accepted')
) AS accepted (relation, description);

SELECT lives_ok(
    $test$DO $$ BEGIN
        INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges)
        VALUES
        ('reporting', 'TABLE', 'guard.grant_probe_materialized', '{SELECT}'),
        ('reporting', 'TABLE', 'guard.grant_probe_partitioned', '{SELECT}');
        PERFORM guard.apply_grants();
    END $$ $test$,
    'rows naming the materialized view and the partitioned table are written and applied'
);
SELECT ok(
    has_table_privilege('guard_reporting', 'guard.grant_probe_materialized', 'SELECT'),
    'reporting may read the materialized view'
);
SELECT ok(
    has_table_privilege('guard_reporting', 'guard.grant_probe_partitioned', 'SELECT'),
    'and the partitioned table'
);

SELECT is(guard.role_grant_refusal('reporting', 'TABLE', refused.relation, '{SELECT}', NULL), refused.relation || refusal.message, refused.description)
FROM (
    VALUES
    ('guard.alerts_id_seq', 'a sequence of schema guard is refused'),
    ('guard.alerts_pkey', 'an index of schema guard is refused'),
    ('guard.grant_probe_composite', 'a composite type of schema guard is refused')
) AS refused (relation, description)
CROSS JOIN (
    VALUES (
        ' is not a table of Booking Guard''s (schema guard, or public.calls,'
        || ' appointments, companies, customers, services)'
    )
) AS refusal (message);
SELECT throws_ok(
    $$INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges)
      VALUES ('reporting', 'TABLE', 'guard.alerts_id_seq', '{SELECT}')$$,
    '23514', NULL,
    'and a row naming the sequence is refused when written'
);

SELECT * FROM finish();
ROLLBACK;
