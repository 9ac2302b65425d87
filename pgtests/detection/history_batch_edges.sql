-- guard.run_checks_between, one batch of `guard check --all`, at its edges:
-- - its range [since, until) must hold a moment: equal bounds, a missing one or reversed ones are
--   refused;
-- - a check with an OPEN check_failed alert runs after the others (a failing check cannot hold
--   up the rest); one whose check_failed alert was resolved runs in its place again; the order is
--   guard.history_checks', the one `guard check --all` runs them in one at a time;
-- - given only_check it runs that check alone, and none for a check it would not run.
-- (Its refresh of the open alerts' statistics: pgtests/correction/sweep_alert_statistics.sql.)
BEGIN;
SELECT plan(8);

SELECT throws_ok(
    $$SELECT * FROM guard.run_checks_between(now(), now())$$,
    '22023', NULL, 'run_checks_between: an empty range is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.run_checks_between(now(), now() - interval '1 hour')$$,
    '22023', NULL, 'run_checks_between: a reversed range is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.run_checks_between(NULL, now())$$,
    '22023', NULL, 'run_checks_between: a range without a start is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.run_checks_between(now(), NULL)$$,
    '22023', NULL, 'run_checks_between: a range without an end is refused'
);

-- The first two checks in id order: the first has an open check_failed alert, the second a
-- resolved one.
CREATE TEMPORARY TABLE first_two AS
SELECT
    k.id,
    row_number() OVER (ORDER BY k.id) AS n
FROM guard.checks AS k
WHERE k.enabled AND k.check_view IS NOT NULL
ORDER BY k.id
LIMIT 2;
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, details, status, resolved_at, resolution
)
SELECT
    'check_failed:check:' || f.id,
    'check_failed',
    'check',
    'high',
    'x',
    jsonb_build_object('check', f.id),
    CASE f.n WHEN 1 THEN 'open' ELSE 'resolved' END,
    CASE f.n WHEN 2 THEN now() END,
    CASE f.n WHEN 2 THEN 'fixed' END
FROM first_two AS f;
SELECT results_eq(
    $$SELECT r.check_id
      FROM guard.run_checks_between(now() - interval '1 day', now() + interval '1 second')
          WITH ORDINALITY AS r
      ORDER BY r.ordinality$$,
    $$SELECT k.id FROM guard.checks AS k
      WHERE k.enabled AND k.check_view IS NOT NULL
      ORDER BY k.id = (SELECT f.id FROM first_two AS f WHERE f.n = 1), k.id$$,
    'run_checks_between: the check with an open check_failed alert runs last, the one whose '
    'alert was resolved in its place'
);
SELECT results_eq(
    $$SELECT r.check_id
      FROM guard.run_checks_between(now() - interval '1 day', now() + interval '1 second')
          WITH ORDINALITY AS r
      ORDER BY r.ordinality$$,
    $$SELECT h.check_id FROM guard.history_checks() WITH ORDINALITY AS h ORDER BY h.ordinality$$,
    'run_checks_between runs the checks in guard.history_checks'' order'
);
SELECT results_eq(
    $$SELECT r.check_id, r.status
      FROM guard.run_checks_between(
          now() - interval '1 day', now() + interval '1 second',
          (SELECT f.id FROM first_two AS f WHERE f.n = 2)
      ) AS r$$,
    $$SELECT f.id, 'ok'::text FROM first_two AS f WHERE f.n = 2$$,
    'run_checks_between(..., only_check): that check alone'
);
SELECT is_empty(
    $$SELECT * FROM guard.run_checks_between(
          now() - interval '1 day', now() + interval '1 second', 'no_such_check'
      )$$,
    'run_checks_between(..., only_check): no check of that id, none runs'
);

SELECT * FROM finish();
ROLLBACK;
