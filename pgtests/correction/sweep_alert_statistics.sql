-- guard.sweep_checks gives guard.analyze_alerts_if_stale the number of OPEN alerts: the planner's
-- statistics of the partial index on open alerts are refreshed when far more alerts are open
-- than it believes, and not because of resolved history, however long.
BEGIN;
SELECT plan(4);

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

SELECT cmp_ok(
    (
        SELECT count(*)::int FROM guard.checks
        WHERE enabled AND sweep AND check_view IS NOT NULL
    ),
    '>',
    0,
    'the sweep runs at least one check'
);

-- 1,100 resolved alerts and 500 open ones; the statistics taken before the open ones came
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, status, resolved_at, resolution
)
SELECT
    'pgtap:resolved:' || g.n,
    'pgtap',
    'job',
    'high',
    'x',
    'resolved',
    now(),
    'fixed'
FROM generate_series(1, 1100) AS g (n);
ANALYZE guard.alerts;
SELECT pg_temp.open_alerts(1, 500);

SELECT guard.sweep_checks();
SELECT is(
    pg_temp.believed_open(), 0::real,
    '500 open alerts, 1,100 resolved: up to 1,000 more open than believed, no ANALYZE'
);

SELECT pg_temp.open_alerts(501, 1100);
SELECT guard.sweep_checks();
SELECT cmp_ok(
    pg_temp.believed_open(), '>=', 1000::real,
    '1,100 open alerts believed none: the sweep analyses guard.alerts'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.alerts
        WHERE status = 'open' AND check_id = 'pgtap'
    ),
    1100,
    'and resolves none of them'
);

SELECT * FROM finish();
ROLLBACK;
