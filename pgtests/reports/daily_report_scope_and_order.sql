-- guard.compute_daily_report at its edges, each company one story, the day 2031-05-10 (UTC):
-- which alerts are the day's (an alert about a call of the day first seen exactly at the day's
-- start; an alert about neither call nor appointment first seen before the day, exactly at its
-- end, or in its last microsecond), the recovery rate (resolved as fixed or manual counts,
-- superseded does not), the order of the action items (severity critical, high, medium, low,
-- then a rule nobody knows; within one, most alerts first), the review queue item only while an
-- item is open, and the trend at exactly the previous days' mean ("same").
BEGIN;
SELECT plan(7);

INSERT INTO companies (id, name) VALUES
(1021, 'scope'), (1022, 'recovery'), (1023, 'order'), (1024, 'queue'), (1025, 'trend');

-- 1021: a call created at the first instant of the day, and its alert first seen at that instant;
-- three anomaly alerts (entity company): the day before, exactly at the day's end, and in the
-- day's last microsecond
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, created_at)
VALUES (10210, 1021, 'r-10210', 'information_only', '2031-05-10 00:00:00+00');
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at
) VALUES
(
    'fca:call:10210', 'flags_contradict_appointments', 1021, 'call', 10210, 'high', 'x',
    '2031-05-10 00:00:00+00'
),
(
    'bfa:1021:before', 'booking_failure_anomaly', 1021, 'company', 1021, 'high', 'x',
    '2031-05-09 23:59:59.999999+00'
),
(
    'bfa:1021:end', 'booking_failure_anomaly', 1021, 'company', 1021, 'high', 'x',
    '2031-05-11 00:00:00+00'
),
(
    'bfa:1021:last', 'booking_failure_anomaly', 1021, 'company', 1021, 'high', 'x',
    '2031-05-10 23:59:59.999999+00'
);
SELECT results_eq(
    $$SELECT by_check FROM guard.compute_daily_report('2031-05-10') WHERE company_id = 1021$$,
    $$VALUES ('{"flags_contradict_appointments": 1, "booking_failure_anomaly": 1}'::jsonb)$$,
    'compute_daily_report: an alert first seen at the day''s first instant is the day''s; one '
    'about no call first seen before the day or at its end is not, one in its last microsecond is'
);

-- 1022: four calls of the day, one alert each: resolved fixed, resolved manual, resolved
-- superseded, open
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, created_at)
SELECT
    g,
    1022,
    'r-' || g,
    'information_only',
    '2031-05-10 10:00:00+00'
FROM generate_series(10220, 10223) AS g;
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at,
    status, resolution, resolved_at
) VALUES
(
    'fca:call:10220', 'flags_contradict_appointments', 1022, 'call', 10220, 'high', 'x',
    '2031-05-10 11:00:00+00', 'resolved', 'fixed', '2031-05-10 12:00:00+00'
),
(
    'fca:call:10221', 'flags_contradict_appointments', 1022, 'call', 10221, 'high', 'x',
    '2031-05-10 11:00:00+00', 'resolved', 'manual', '2031-05-10 12:00:00+00'
),
(
    'fca:call:10222', 'flags_contradict_appointments', 1022, 'call', 10222, 'high', 'x',
    '2031-05-10 11:00:00+00', 'resolved', 'superseded', '2031-05-10 12:00:00+00'
),
(
    'fca:call:10223', 'flags_contradict_appointments', 1022, 'call', 10223, 'high', 'x',
    '2031-05-10 11:00:00+00', 'open', NULL, NULL
);
SELECT results_eq(
    $$SELECT recovery_rate_pct FROM guard.compute_daily_report('2031-05-10') WHERE company_id = 1022$$,
    $$VALUES (50.00::numeric(6, 2))$$,
    'compute_daily_report: of four alerts, the fixed and the manual one recovered; the '
    'superseded and the open one did not'
);

-- 1023: open alerts of a medium rule (1), a low rule (2) and a check removed since (3)
INSERT INTO guard.rules (id, severity, description, remedy, action)
VALUES ('T_low_rule', 'low', 'a rule of low severity', 'report', 'look at it');
INSERT INTO guard.checks (id, rule_id, severity, description, remedy)
VALUES ('t_low_check', 'T_low_rule', 'low', 'a check of low severity', 'report');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, created_at)
SELECT
    g,
    1023,
    'r-' || g,
    'information_only',
    '2031-05-10 10:00:00+00'
FROM generate_series(10230, 10235) AS g;
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at
)
SELECT
    'order:' || v.call_id,
    v.check_id,
    1023,
    'call',
    v.call_id,
    'low',
    'x',
    '2031-05-10 11:00:00+00'
FROM (
    VALUES
    (10230, 'call_without_direction'),
    (10231, 't_low_check'), (10232, 't_low_check'),
    (10233, 'a_check_removed_since'), (10234, 'a_check_removed_since'),
    (10235, 'a_check_removed_since')
) AS v (call_id, check_id);
SELECT results_eq(
    $$SELECT i ->> 'rule_id', i ->> 'severity', (i ->> 'count')::int
      FROM guard.compute_daily_report('2031-05-10') AS d,
           jsonb_array_elements(d.action_items) WITH ORDINALITY AS a (i, n)
      WHERE d.company_id = 1023 ORDER BY a.n$$,
    $$VALUES ('I1_call_direction', 'medium', 1), ('T_low_rule', 'low', 2),
             ('(unknown)', NULL, 3)$$,
    'compute_daily_report: action items by severity, medium before low before an unknown rule, '
    'whatever their counts'
);

-- 1024: a review item created during the day and closed; 1021 has none at all
SET LOCAL session_replication_role = replica;
INSERT INTO guard.review_items (company_id, reason, status, created_at, closed_at, closed_by)
VALUES (1024, 'other', 'resolved', '2031-05-10 09:00:00+00', '2031-05-10 10:00:00+00', 'ann');
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT manual_reviews, open_review_items, action_items
      FROM guard.compute_daily_report('2031-05-10') WHERE company_id = 1024$$,
    $$VALUES (1, 0, '[]'::jsonb)$$,
    'compute_daily_report: a day''s review item closed since is no review queue to work'
);
SELECT results_eq(
    $$SELECT i ->> 'kind', count(*)::int
      FROM guard.compute_daily_report('2031-05-10') AS d, jsonb_array_elements(d.action_items) AS i
      WHERE d.company_id = 1021 GROUP BY 1$$,
    $$VALUES ('open_alerts', 2)$$,
    'compute_daily_report: a company without review items has no review queue item'
);

-- 1025: no calls on the day (rate 0.00), and a stored report of the day before at 0.00 too; the
-- same company a day later against a stored 0.01
INSERT INTO guard.daily_reports (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items
) VALUES
('2031-05-09', 1025, 10, 0, 0.00, 0, 0, 0),
('2031-05-10', 1025, 10000, 1, 0.01, 0, 0, 0);
SELECT results_eq(
    $$SELECT trend ->> 'direction', (trend ->> 'delta_pct_points')::numeric
      FROM guard.compute_daily_report('2031-05-10') WHERE company_id = 1025$$,
    $$VALUES ('same', 0.00)$$,
    'compute_daily_report: a rate exactly at the previous days'' mean is the same, not worse'
);
SELECT results_eq(
    $$SELECT trend ->> 'direction' FROM guard.compute_daily_report('2031-05-11')
      WHERE company_id = 1025$$,
    $$VALUES ('better')$$,
    'compute_daily_report: a rate below the previous days'' mean is better'
);

SELECT * FROM finish();
ROLLBACK;
