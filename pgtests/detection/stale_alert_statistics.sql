-- A pass that meets far more open alerts than the planner believes analyses guard.alerts before
-- the statements that join its findings with them (guard.analyze_alerts_if_stale): the partial
-- indexes on open alerts were believed empty after a burst, and each finding was compared with
-- every open alert. Offending rows are loaded with triggers bypassed.
BEGIN;
SELECT plan(8);

INSERT INTO companies (id, name) VALUES (1, 'A');
-- 3,000 recent calls whose active appointment their flags do not show
-- (flags_contradict_appointments)
SELECT pgtap_setup.legacy_calls(1, 3000, now(), direction => 'inbound', booked_up_to => 3000);

CREATE FUNCTION pg_temp.believed_open() RETURNS real
LANGUAGE sql AS $$
    SELECT reltuples FROM pg_class WHERE oid = 'guard.alerts_one_open_per_fingerprint'::regclass
$$;

ANALYZE guard.alerts;
SELECT is(pg_temp.believed_open(), 0::real, 'analysed with no alert open: the planner believes none');
SELECT is(guard.analyze_alerts_if_stale(1000), FALSE, 'up to 1,000 more than believed: no ANALYZE');

-- The pass opens 3,000 alerts with its check flags_contradict_appointments; the checks after it
-- in the same pass meet them.
SELECT results_eq(
    $$SELECT opened FROM guard.detect() WHERE check_id = 'flags_contradict_appointments'$$,
    ARRAY[3000],
    'the pass opens the burst''s alerts'
);
SELECT cmp_ok(
    pg_temp.believed_open(), '>=', 2000::real,
    'and analyses guard.alerts before its next check: the planner now sees them'
);
-- The decision is taken from the statistics of the partial index on open alerts, on both sides
-- of its threshold (twice the open alerts the planner believes in, plus 1,000).
SELECT is(
    guard.analyze_alerts_if_stale(floor(2 * pg_temp.believed_open() + 1000)::bigint),
    FALSE,
    'at twice the believed open alerts plus 1,000 the statistics are fresh: no ANALYZE'
);
-- half the alerts resolved: the index still counts them until the next ANALYZE
UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
WHERE id % 2 = 0;
CREATE TEMPORARY TABLE believed_before AS SELECT pg_temp.believed_open() AS n;
SELECT is(
    guard.analyze_alerts_if_stale(floor(2 * pg_temp.believed_open() + 1000)::bigint + 1),
    TRUE,
    'one alert more than that: stale, it analyses'
);
SELECT cmp_ok(
    pg_temp.believed_open(), '<', (SELECT n * 0.75 FROM believed_before)::real,
    'and the planner now sees that half of the open alerts left the index'
);
SELECT is(guard.analyze_alerts_if_stale(NULL), FALSE, 'no count, no ANALYZE');

SELECT * FROM finish();
ROLLBACK;
