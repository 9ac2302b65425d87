-- guard.own_check_bypass (what register_check refuses and `guard db verify` names), each kind of
-- read on both sides, every view owned by the owner role as register_check leaves it:
-- - counting the rows of a table the reporting role may not read is named though no column is;
--   counting a table reporting may read, or may read some columns of, is not;
-- - a column reporting may not read is found among its table's own columns, even numbered past
--   every other relation's;
-- - a sequence, a partitioned table, a view, a materialized view and a foreign table reporting
--   may not read are named; a field of a composite type's value reads no relation;
-- - a whole-row reference (to_jsonb) in a view read on the way reads every column of what that
--   view reads, not of the view itself: a check may use the columns of it reporting may read;
-- - PostgreSQL's own views (pg_catalog, information_schema) may be read although they run with
--   their owner's rights; a DBA's view in schema guard is Booking Guard's only when a view of
--   that name is, not when a function is;
-- - a function in C or internal may be called wherever it is; a DBA's function in SQL is named
--   with its language, in schema guard too (only the functions Booking Guard ships are exempt).
BEGIN;
SELECT plan(20);

CREATE VIEW guard.check_counts_services WITH (security_invoker = TRUE) AS
SELECT
    r.id,
    (SELECT count(*) FROM public.services) AS services
FROM guard.rules AS r;
CREATE VIEW guard.check_counts_settings WITH (security_invoker = TRUE) AS
SELECT
    r.id,
    (SELECT count(*) FROM guard.settings) AS settings
FROM guard.rules AS r;
CREATE VIEW guard.check_counts_calls WITH (security_invoker = TRUE) AS
SELECT
    r.id,
    (SELECT count(*) FROM public.calls) AS calls
FROM guard.rules AS r;
-- a wide table whose last column, numbered past every other relation's columns, is the secret:
-- the column is found among the table's own
DO $$
BEGIN
    EXECUTE format(
        'CREATE TABLE public.dba_wide (%s, secret text)',
        (SELECT string_agg(format('c%s integer', n), ', ') FROM generate_series(1, 1500) AS n)
    );
END;
$$;
GRANT SELECT (c1) ON public.dba_wide TO guard_reporting;
CREATE VIEW guard.check_reads_wide_secret WITH (security_invoker = TRUE) AS
SELECT w.secret
FROM public.dba_wide AS w;

-- every kind of relation reporting may not read: a partitioned table, a view that runs with the
-- reader's rights, a materialized view, a foreign table
CREATE TABLE public.dba_partitioned (id bigint, company_id bigint) PARTITION BY RANGE (id);
CREATE TABLE public.dba_partition PARTITION OF public.dba_partitioned FOR VALUES FROM (0) TO (100);
CREATE VIEW guard.dba_rule_ids WITH (security_invoker = TRUE) AS
SELECT r.id
FROM guard.rules AS r;
CREATE MATERIALIZED VIEW guard.dba_rule_count AS
SELECT count(*) AS rules
FROM guard.rules;
-- (through EXECUTE: sqlfluff's postgres dialect does not parse these statements)
DO $$
BEGIN
    EXECUTE 'CREATE FOREIGN DATA WRAPPER dba_wrapper';
    EXECUTE 'CREATE SERVER dba_server FOREIGN DATA WRAPPER dba_wrapper';
    EXECUTE 'CREATE FOREIGN TABLE public.dba_remote (id bigint) SERVER dba_server';
END;
$$;
-- a check view guard.check_reads_KIND of each, and of a sequence, as register_check leaves it
CREATE TEMPORARY TABLE reads (kind, relation, read_column, why) AS
VALUES
(
    'sequence', 'public.calls_id_seq', 'last_value',
    'a sequence reporting may not read is named (its last_value counts every company''s calls)'
),
(
    'partitioned', 'public.dba_partitioned', 'id',
    'a partitioned table reporting may not read is named'
),
(
    'invoker_view', 'guard.dba_rule_ids', 'id',
    'so is a view running with the reader''s rights that reporting may not read'
),
('materialized', 'guard.dba_rule_count', 'rules', 'a materialized view'),
('foreign', 'public.dba_remote', 'id', 'and a foreign table');
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM reads LOOP
        EXECUTE format(
            'CREATE VIEW guard.%I WITH (security_invoker = TRUE) AS SELECT x.%I FROM %s AS x',
            'check_reads_' || r.kind, r.read_column, r.relation
        );
        EXECUTE format('ALTER VIEW guard.%I OWNER TO guard_owner', 'check_reads_' || r.kind);
    END LOOP;
END;
$$;

-- a DBA's helper that carries each rule whole; reporting may read two of its columns
CREATE VIEW guard.dba_rule_rows WITH (security_invoker = TRUE) AS
SELECT
    r.id,
    r.severity,
    to_jsonb(r) AS whole_rule
FROM guard.rules AS r;
GRANT SELECT (id, severity) ON guard.dba_rule_rows TO guard_reporting;
CREATE VIEW guard.check_rule_ids WITH (security_invoker = TRUE) AS
SELECT
    d.id,
    d.severity
FROM guard.dba_rule_rows AS d;
CREATE VIEW guard.check_whole_rules WITH (security_invoker = TRUE) AS
SELECT
    d.id,
    d.whole_rule
FROM guard.dba_rule_rows AS d;

CREATE VIEW guard.check_reads_pg_roles WITH (security_invoker = TRUE) AS
SELECT r.id
FROM guard.rules AS r
WHERE EXISTS (
    SELECT FROM pg_catalog.pg_roles AS o
    WHERE o.rolname = 'guard_reporting'
);
CREATE VIEW guard.check_reads_schemata WITH (security_invoker = TRUE) AS
SELECT r.id
FROM guard.rules AS r
WHERE EXISTS (
    SELECT FROM information_schema.schemata AS s
    WHERE s.schema_name = 'guard'
);

-- a field of a value of a composite type: the type's attributes are no rows anybody reads
CREATE TYPE guard.dba_pair AS (first_value integer, second_value integer);
CREATE VIEW guard.check_composite_field WITH (security_invoker = TRUE) AS
SELECT
    r.id,
    (row(1, 2)::guard.dba_pair).first_value AS first_value
FROM guard.rules AS r;
-- a DBA's SQL function: what it reads is not in the catalog, and the refusal names its language
CREATE FUNCTION public.dba_rule_label(rule_id text) RETURNS text
LANGUAGE sql STABLE AS 'SELECT upper(rule_id)';
CREATE VIEW guard.check_calls_sql_function WITH (security_invoker = TRUE) AS
SELECT public.dba_rule_label(r.id) AS label
FROM guard.rules AS r;
-- a function of the DBA's own bound to one of PostgreSQL's built-in C functions (what an
-- extension in C adds): it reads nothing a catalog would not show
CREATE FUNCTION public.dba_absolute(integer) RETURNS integer
LANGUAGE internal IMMUTABLE STRICT AS 'int4abs';
CREATE VIEW guard.check_calls_internal_function WITH (security_invoker = TRUE) AS
SELECT public.dba_absolute(length(r.id)) AS id_length
FROM guard.rules AS r;
-- and one in C (plpgsql's validator, in the library every server has; the view is never run)
CREATE FUNCTION public.dba_validate(oid) RETURNS void STABLE
LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_validator';
CREATE VIEW guard.check_calls_c_function WITH (security_invoker = TRUE) AS
SELECT r.id
FROM guard.rules AS r
WHERE public.dba_validate(0::oid) IS NULL;
-- a DBA's SQL function in schema guard is not Booking Guard's for being there
CREATE FUNCTION guard.dba_rule_label(rule_id text) RETURNS text
LANGUAGE sql STABLE AS 'SELECT upper(rule_id)';
CREATE VIEW guard.check_calls_guard_sql_function WITH (security_invoker = TRUE) AS
SELECT guard.dba_rule_label(r.id) AS label
FROM guard.rules AS r;

-- named like a function Booking Guard ships (functions/guard.mask_phone.sql), running with its
-- owner's rights; reporting may read it, so only its rights are in question
CREATE VIEW guard.mask_phone AS
SELECT r.id
FROM guard.rules AS r;
GRANT SELECT ON guard.mask_phone TO guard_reporting;
CREATE VIEW guard.check_reads_mask_phone WITH (security_invoker = TRUE) AS
SELECT m.id
FROM guard.mask_phone AS m;

ALTER VIEW guard.check_counts_services OWNER TO guard_owner;
ALTER VIEW guard.check_counts_settings OWNER TO guard_owner;
ALTER VIEW guard.check_counts_calls OWNER TO guard_owner;
ALTER VIEW guard.check_reads_wide_secret OWNER TO guard_owner;
ALTER VIEW guard.dba_rule_ids OWNER TO guard_owner;
ALTER VIEW guard.dba_rule_rows OWNER TO guard_owner;
ALTER VIEW guard.check_rule_ids OWNER TO guard_owner;
ALTER VIEW guard.check_whole_rules OWNER TO guard_owner;
ALTER VIEW guard.check_reads_pg_roles OWNER TO guard_owner;
ALTER VIEW guard.check_reads_schemata OWNER TO guard_owner;
ALTER VIEW guard.check_composite_field OWNER TO guard_owner;
ALTER VIEW guard.check_calls_sql_function OWNER TO guard_owner;
ALTER VIEW guard.check_calls_internal_function OWNER TO guard_owner;
ALTER VIEW guard.check_calls_c_function OWNER TO guard_owner;
ALTER VIEW guard.check_calls_guard_sql_function OWNER TO guard_owner;
ALTER VIEW guard.mask_phone OWNER TO guard_owner;
ALTER VIEW guard.check_reads_mask_phone OWNER TO guard_owner;

SELECT ok(
    EXISTS (
        SELECT FROM guard.definitions
        WHERE path = 'functions/guard.mask_phone.sql' AND kind = 'function'
    )
    AND NOT EXISTS (
        SELECT FROM guard.definitions
        WHERE path = 'views/guard.mask_phone.sql'
    ),
    'Booking Guard ships a function guard.mask_phone, and no view of that name'
);

SELECT is(
    guard.own_check_bypass('guard.check_counts_services'),
    'guard.check_counts_services reads public.services, which the reporting role guard_reporting'
    || ' may not read: its rows would reach reporting through the check''s alerts',
    'counting the rows of a table reporting may not read is named, though no column is'
);
SELECT is(
    guard.own_check_bypass('guard.check_counts_settings'), NULL,
    'counting the rows of a table reporting may read is not'
);
SELECT is(
    guard.own_check_bypass('guard.check_counts_calls'), NULL,
    'nor of one reporting may read some columns of (public.calls without its phone numbers)'
);

SELECT is(
    guard.own_check_bypass('guard.check_reads_wide_secret'),
    'guard.check_reads_wide_secret reads public.dba_wide (secret), which the reporting role'
    || ' guard_reporting may not read: its rows would reach reporting through the check''s alerts',
    'a column reporting may not read, numbered past any other relation''s, is named'
);
-- every kind of relation reporting may not read is named
SELECT
    matches(
        guard.own_check_bypass('guard.check_reads_' || r.kind),
        format(
            'reads %s \(%s\), which the reporting role', replace(r.relation, '.', '\.'), r.read_column
        ),
        r.why
    )
FROM reads AS r;

SELECT is(
    guard.own_check_bypass('guard.check_rule_ids'), NULL,
    'the columns reporting may read of a view that makes a whole-row reference are not named'
);
SELECT matches(
    guard.own_check_bypass('guard.check_whole_rules'),
    'reads guard\.dba_rule_rows \(whole_rule\), which the reporting role',
    'its column reporting may not read is'
);

SELECT is(
    guard.own_check_bypass('guard.check_reads_pg_roles'), NULL,
    'a view of pg_catalog, which runs with its owner''s rights, may be read'
);
SELECT is(
    guard.own_check_bypass('guard.check_reads_schemata'), NULL,
    'so may a view of information_schema'
);

SELECT is(
    guard.own_check_bypass('guard.check_composite_field'), NULL,
    'a field of a composite type''s value reads no relation'
);

SELECT is(
    guard.own_check_bypass('guard.check_calls_sql_function'),
    'guard.check_calls_sql_function calls public.dba_rule_label(text), a sql function whose reads'
    || ' are not visible to this check (they would run with detection''s rights): write what it'
    || ' does into the view',
    'a DBA''s function is named with its own language'
);
SELECT is(
    guard.own_check_bypass('guard.check_calls_internal_function'), NULL,
    'a function in C or internal outside pg_catalog may be called'
);
SELECT is(
    guard.own_check_bypass('guard.check_calls_c_function'), NULL,
    'one in C too'
);
SELECT is(
    guard.own_check_bypass('guard.check_calls_guard_sql_function'),
    'guard.check_calls_guard_sql_function calls guard.dba_rule_label(text), a sql function whose'
    || ' reads are not visible to this check (they would run with detection''s rights): write'
    || ' what it does into the view',
    'a DBA''s function in schema guard is named: only the functions Booking Guard ships are exempt'
);

SELECT is(
    guard.own_check_bypass('guard.check_reads_mask_phone'),
    'guard.check_reads_mask_phone reads guard.mask_phone, a view that runs with its owner''s'
    || ' rights (security_invoker is not set)',
    'a DBA''s view named like a function Booking Guard ships is not taken for one of its views'
);

SELECT * FROM finish();
ROLLBACK;
