-- guard.sweep_checks, and guard.run_checks_between (one batch of `guard check --all`) like it,
-- give guard.analyze_alerts_if_stale the number of OPEN alerts: the planner's statistics of the
-- partial index on open alerts are refreshed when far more alerts are open than it believes, and
-- not because of resolved history, however long.
BEGIN;
SELECT plan(7);

CREATE FUNCTION pg_temp.believed_open() RETURNS real
LANGUAGE sql AS $$
    SELECT reltuples FROM pg_class WHERE oid = 'guard.alerts_one_open_per_fingerprint'::regclass
$$;
-- Open alerts 'pgtap:open:first' to 'pgtap:open:last'.
CREATE FUNCTION pg_temp.open_alerts(first integer, last integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message)
    SELECT 'pgtap:open:' || n, 'pgtap', 'job', 'high', 'x' FROM generate_series(first, last) AS n
$$;
-- 1,100 resolved alerts, then 500 open ones that the statistics do not know of, then 600 more:
-- what the planner believes after `pass` ran at 500 and at 1,100 open alerts.
CREATE FUNCTION pg_temp.statistics_after(caller text, pass text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM guard.alerts WHERE check_id = 'pgtap';
    INSERT INTO guard.alerts (
        fingerprint, check_id, entity_type, severity, message, status, resolved_at, resolution
    )
    SELECT 'pgtap:resolved:' || g.n, 'pgtap', 'job', 'high', 'x', 'resolved', now(), 'fixed'
    FROM generate_series(1, 1100) AS g (n);
    ANALYZE guard.alerts;
    PERFORM pg_temp.open_alerts(1, 500);
    EXECUTE pass;
    RETURN NEXT is(
        pg_temp.believed_open(), 0::real,
        caller || ': 500 open alerts, 1,100 resolved: up to 1,000 more open than believed, no ANALYZE'
    );
    PERFORM pg_temp.open_alerts(501, 1100);
    EXECUTE pass;
    RETURN NEXT cmp_ok(
        pg_temp.believed_open(), '>=', 1000::real,
        caller || ': 1,100 open alerts believed none: guard.alerts is analysed'
    );
    RETURN NEXT is(
        (SELECT count(*)::int FROM guard.alerts WHERE status = 'open' AND check_id = 'pgtap'),
        1100,
        caller || ' resolves none of them'
    );
END;
$$;

SELECT cmp_ok(
    (
        SELECT count(*)::int FROM guard.checks
        WHERE enabled AND sweep AND check_view IS NOT NULL
    ),
    '>',
    0,
    'the sweep runs at least one check'
);

SELECT * FROM pg_temp.statistics_after('the sweep', 'SELECT guard.sweep_checks()');
-- (a batch never resolves)
SELECT * FROM pg_temp.statistics_after(
    'run_checks_between',
    $$SELECT count(*) FROM guard.run_checks_between(now() - interval '1 day', now() + interval '1 second')$$
);

SELECT * FROM finish();
ROLLBACK;
