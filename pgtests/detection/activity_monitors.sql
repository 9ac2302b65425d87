-- The activity monitors (rule I9): a company that usually gets calls or appointments in this hour
-- of the week and gets none, or far fewer, is alerted; a quiet hour never is; the alert goes when
-- the traffic comes back.
BEGIN;
SELECT plan(12);

INSERT INTO companies (id, name) VALUES (1, 'stopped'), (2, 'dropped'), (3, 'steady'), (4, 'quiet'),
(5, 'at the ratio'), (6, 'busy at another hour');

-- History: the same hour 1 to 4 weeks ago, 10 calls per week (4 for the quiet company 4).
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    co.id,
    'h-' || co.id || '-' || w || '-' || n,
    now() - make_interval(days => 7 * w) - interval '30 min'
FROM companies AS co
CROSS JOIN generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 10) AS n
WHERE co.id NOT IN (4, 6) OR (co.id = 4 AND n <= 4);
-- Company 6 is busy three hours later in the day, every week, and never in this hour: its usual
-- for this hour of the week is nothing, so its silence now is no stop.
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    6,
    'other-' || w || '-' || n,
    now() - make_interval(days => 7 * w) + interval '3 hours'
FROM generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 10) AS n;
-- This hour: company 1 none, 2 two, 3 five, 4 none, 5 exactly 0.3 x 10.
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    r.company_id,
    'r-' || r.company_id || '-' || n,
    now() - interval '10 min'
FROM (VALUES (2, 2), (3, 5), (5, 3)) AS r (company_id, how_many)
CROSS JOIN LATERAL generate_series(1, r.how_many) AS n;
-- Appointments: company 3 usually books 6 in this hour and booked none; company 5 usually books
-- 10 and booked 2.
INSERT INTO appointments (company_id, created_at)
SELECT
    3,
    now() - make_interval(days => 7 * w) - interval '20 min'
FROM generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 6) AS n;
INSERT INTO appointments (company_id, created_at)
SELECT
    5,
    now() - make_interval(days => 7 * w) - interval '20 min'
FROM generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 10) AS n;
INSERT INTO appointments (company_id, created_at)
SELECT
    5,
    now() - interval '5 min'
FROM generate_series(1, 2) AS n;

SELECT results_eq(
    $$SELECT entity_id, detail ->> 'recent', detail ->> 'usual' FROM guard.check_calls_stopped$$,
    $$VALUES (1::bigint, '0', '10.00')$$,
    'calls_stopped: the company that usually gets 10 calls in this hour and got none; not the '
    || 'quiet one, not the one whose calls come at another hour of the week'
);
SELECT results_eq(
    $$SELECT entity_id, (detail ->> 'recent')::int FROM guard.check_call_volume_drop$$,
    $$VALUES (2::bigint, 2)$$,
    'call_volume_drop: 2 of a usual 10; exactly the ratio (3 of 10) is no drop'
);
SELECT results_eq(
    $$SELECT entity_id, detail ->> 'usual' FROM guard.check_bookings_stopped$$,
    $$VALUES (3::bigint, '6.00')$$,
    'bookings_stopped: the company that usually books 6 in this hour and booked none'
);
SELECT results_eq(
    $$SELECT entity_id, (detail ->> 'recent')::int FROM guard.check_booking_volume_drop$$,
    $$VALUES (5::bigint, 2)$$,
    'booking_volume_drop: 2 of a usual 10; nothing booked at all (company 3) is bookings_stopped'
);
SELECT is_empty(
    $$SELECT FROM guard.check_calls_stopped WHERE call_id IS NOT NULL OR entity_type <> 'company'
      UNION ALL SELECT FROM guard.check_call_volume_drop WHERE call_id IS NOT NULL
      UNION ALL SELECT FROM guard.check_bookings_stopped WHERE call_id IS NOT NULL
      UNION ALL SELECT FROM guard.check_booking_volume_drop WHERE call_id IS NOT NULL$$,
    'every monitor row is about a company and names no call: a check of one call never finds one'
);
SELECT is(
    (
        SELECT detail ->> 'last_at' FROM guard.check_calls_stopped
        WHERE entity_id = 1
    ),
    to_json(now() - interval '7 days 30 min') #>> '{}',
    'the alert says when the last call arrived'
);

-- Severity and rule come from the check's row in guard.checks, not from the view's text.
SELECT is_empty(
    $$SELECT v.check_id
      FROM (
          SELECT check_id, severity, rule_id FROM guard.check_calls_stopped
          UNION ALL SELECT check_id, severity, rule_id FROM guard.check_call_volume_drop
          UNION ALL SELECT check_id, severity, rule_id FROM guard.check_bookings_stopped
          UNION ALL SELECT check_id, severity, rule_id FROM guard.check_booking_volume_drop
      ) AS v
      LEFT JOIN guard.checks AS k ON v.check_id = k.id
      WHERE (v.severity, v.rule_id) IS DISTINCT FROM (k.severity, k.rule_id)$$,
    'every monitor row carries the severity and rule its check has in guard.checks'
);
UPDATE guard.checks SET severity = 'low'
WHERE id = 'calls_stopped';
SELECT results_eq(
    $$SELECT severity FROM guard.check_calls_stopped$$,
    $$VALUES ('low'::text)$$,
    'a severity changed in guard.checks is the one the monitor reports'
);

SELECT results_eq(
    $$SELECT check_id, opened FROM guard.run_detection(now() - interval '1 hour', NULL)
      WHERE check_id IN ('calls_stopped', 'call_volume_drop', 'bookings_stopped', 'booking_volume_drop')
      ORDER BY check_id$$,
    $$VALUES ('booking_volume_drop', 1), ('bookings_stopped', 1), ('call_volume_drop', 1),
             ('calls_stopped', 1)$$,
    'a detection pass opens one company alert each'
);
SELECT results_eq(
    $$SELECT severity FROM guard.alerts WHERE check_id = 'calls_stopped'$$,
    $$VALUES ('low'::text)$$,
    'and the alert says it'
);

-- The calls come back for company 1: its alert is resolved by the next pass.
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    1,
    'back-' || n,
    now() - interval '1 min'
FROM generate_series(1, 9) AS n;
SELECT results_eq(
    $$SELECT resolved FROM guard.run_detection(now() - interval '1 hour', NULL)
      WHERE check_id = 'calls_stopped'$$,
    $$VALUES (1)$$,
    'traffic back: the alert is resolved'
);

-- A company's quiet hour is its own: raising the minimum makes company 2's hour quiet too.
UPDATE guard.settings SET value = '11'
WHERE key = 'monitor_min_expected';
SELECT is_empty(
    $$SELECT FROM guard.check_call_volume_drop$$,
    'below monitor_min_expected usual calls an hour is quiet: nothing fires'
);

SELECT * FROM finish();
ROLLBACK;
