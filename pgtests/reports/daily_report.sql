-- The daily report on a small fixture: totals, inconsistent calls, rate, breakdown by rule, top
-- issues, corrections vs reviews, open review items, the 7-day trend, and re-running a day
-- replaces its rows; the BI view reads them without personal data.
BEGIN;
SELECT plan(29);

INSERT INTO public.companies (id, name) VALUES (9001, 'Praxis A'), (9002, 'Salon B');

-- Company A: four calls on 2026-01-10 (UTC), one the day before. Company B: two calls.
INSERT INTO public.calls (id, company_id, direction, from_number, created_at) VALUES
(90001, 9001, 'inbound', '+49 30 1', '2026-01-10 00:00:00+00'),
(90002, 9001, 'inbound', '+49 30 2', '2026-01-10 12:00:00+00'),
(90003, 9001, 'inbound', '+49 30 3', '2026-01-10 23:59:59+00'),
(90004, 9001, 'inbound', '+49 30 4', '2026-01-10 08:00:00+00'),
(90005, 9001, 'inbound', '+49 30 5', '2026-01-09 23:59:59+00'),
(90006, 9002, 'inbound', '+49 30 6', '2026-01-10 09:00:00+00'),
(90007, 9002, 'inbound', '+49 30 7', '2026-01-11 00:00:00+00');

-- Appointments created on the 10th (orphaned) and on the 9th.
INSERT INTO public.appointments (id, company_id, call_id, source, created_at) VALUES
(80001, 9001, NULL, 'retell_webhook', '2026-01-10 14:00+00'),
(80002, 9001, NULL, 'retell_webhook', '2026-01-09 14:00+00');

-- Detection alerts, all first seen on the 10th or later: call 90001 twice (two rules), 90002
-- (already resolved) once, 90003 twice (one check of I1, one of I7), 90002 again through details.call_id (an appointment
-- entity), an orphaned appointment of the 10th, the failure anomaly (a company entity); not the
-- day's: the call and the appointment of the 9th, a job alert (no company).
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details,
    status, first_seen_at, last_seen_at, resolved_at, resolution
) VALUES
(
    'flags_contradict_appointments:call:90001', 'flags_contradict_appointments', 9001, 'call',
    90001, 'high', 'x', '{}', 'open', '2026-01-10 00:05+00', '2026-01-10 00:05+00', NULL, NULL
),
(
    'booked_without_appointment:call:90001', 'booked_without_appointment', 9001, 'call',
    90001, 'critical', 'x', '{}', 'open', '2026-01-11 00:10+00', '2026-01-11 00:10+00', NULL, NULL
),
(
    'call_without_direction:call:90002', 'call_without_direction', 9001, 'call', 90002, 'medium',
    'x', '{}', 'resolved', '2026-01-10 12:05+00', '2026-01-10 12:05+00', '2026-01-10 13:00+00',
    'fixed'
),
(
    'call_without_direction:call:90003', 'call_without_direction', 9001, 'call', 90003, 'medium',
    'x', '{}', 'open', '2026-01-11 00:04+00', '2026-01-11 00:04+00', NULL, NULL
),
(
    'recent_booking_failure:call:90003', 'recent_booking_failure', 9001, 'call', 90003, 'high',
    'x', '{}', 'open', '2026-01-11 00:06+00', '2026-01-11 00:06+00', NULL, NULL
),
(
    'cross_tenant_link:appointment:80003', 'cross_tenant_link', 9001, 'appointment', 80003,
    'critical', 'x', '{"call_id": 90002}', 'open', '2026-01-10 15:00+00', '2026-01-10 15:00+00',
    NULL, NULL
),
(
    'orphaned_voice_appointment:appointment:80001', 'orphaned_voice_appointment', 9001,
    'appointment', 80001, 'high', 'x', '{}', 'open', '2026-01-10 15:00+00', '2026-01-10 15:00+00',
    NULL, NULL
),
(
    'booking_failure_anomaly:company:9001', 'booking_failure_anomaly', 9001, 'company', 9001,
    'high', 'x', '{}', 'open', '2026-01-10 16:00+00', '2026-01-10 16:00+00', NULL, NULL
),
(
    'call_without_direction:call:90005', 'call_without_direction', 9001, 'call', 90005, 'medium',
    'x', '{}', 'open', '2026-01-10 00:04+00', '2026-01-10 00:04+00', NULL, NULL
),
(
    'orphaned_voice_appointment:appointment:80002', 'orphaned_voice_appointment', 9001,
    'appointment', 80002, 'high', 'x', '{}', 'open', '2026-01-10 15:00+00', '2026-01-10 15:00+00',
    NULL, NULL
),
(
    'job_failed:job:detect', 'job_failed', NULL, 'job', NULL, 'high', 'x', '{}', 'open',
    '2026-01-10 15:00+00', '2026-01-10 15:00+00', NULL, NULL
);

INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason, corrected_at)
VALUES
('I1_call_direction', 9001, 'call', 90002, 'test', '2026-01-10 13:00+00'),
('I1_call_direction', 9001, 'call', 90003, 'test', '2026-01-10 13:00+00'),
('I3_appointment_flags', 9001, 'call', 90004, 'test', '2026-01-10 23:00+00'),
('I1_call_direction', 9001, 'call', 90005, 'test', '2026-01-09 13:00+00'),
-- the first instant of the next day: not the 10th's
('I1_call_direction', 9001, 'call', 90001, 'test', '2026-01-11 00:00+00');

INSERT INTO guard.review_items (company_id, call_id, reason, status, created_at, closed_at) VALUES
(9001, 90001, 'other', 'open', '2026-01-10 01:00+00', NULL),
(9001, 90005, 'other', 'open', '2026-01-08 01:00+00', NULL),
(9001, 90002, 'other', 'resolved', '2026-01-10 02:00+00', '2026-01-10 03:00+00');
-- claimed by a reviewer, created before the day: still open when the report is generated
INSERT INTO guard.review_items (company_id, call_id, reason, status, claimed_by, claimed_at, created_at)
VALUES (9001, 90003, 'other', 'claimed', 'reviewer', '2026-01-09 02:00+00', '2026-01-08 02:00+00');

-- Stored reports of the days before: 40 % and 30 % within the 7 days (the 3rd is the 7th day
-- before), 80 % on the 8th day before and 90 % on the 9th, outside them.
INSERT INTO guard.daily_reports (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items, recovery_rate_pct,
    detection_latency_p95_seconds
) VALUES
('2026-01-09', 9001, 10, 4, 40, 0, 0, 0, 50, 120),
('2026-01-03', 9001, 10, 3, 30, 0, 0, 0, 70, NULL),
('2026-01-02', 9001, 10, 8, 80, 0, 0, 0, 10, 900),
('2026-01-01', 9001, 10, 9, 90, 0, 0, 0, 10, 900);

-- Two of the day's alerts were opened by detection 5 and 10 minutes after their rows were
-- written (observed_at).
UPDATE guard.alerts SET observed_at = first_seen_at - interval '5 min'
WHERE fingerprint = 'flags_contradict_appointments:call:90001';
UPDATE guard.alerts SET observed_at = first_seen_at - interval '10 min'
WHERE fingerprint = 'orphaned_voice_appointment:appointment:80001';

SELECT is(
    (SELECT count(*)::int FROM guard.daily_report('2026-01-10')),
    2,
    'one report row per company'
);
SELECT results_eq(
    $$SELECT total_appointments, recovery_rate_pct, detection_latency_p95_seconds
      FROM guard.daily_reports WHERE report_date = '2026-01-10' ORDER BY company_id$$,
    $$VALUES (1, 12.50::numeric(6, 2), 585.00::numeric(12, 2)), (0, NULL, NULL)$$,
    'the day''s appointments (not the 9th''s); one of the day''s 8 alerts fixed; p95 of 5 and '
    || '10 minutes from row to alert; nothing for a company without alerts'
);
SELECT is(
    (
        SELECT jsonb_path_query_array(action_items, '$[*].rule_id') FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '["I4_booked_outcome", "I5_tenant_link", "I7_booking_failures", "I3_appointment_flags",
      "I6_voice_appointment_call", "I1_call_direction"]'::jsonb,
    'action items: the rules with the day''s alerts still open, most severe then most numerous '
    || 'first (the fixed alert of I1 is not one)'
);
SELECT is(
    (
        SELECT (action_items -> -1) - 'action' FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '{"kind": "review_queue", "count": 3}'::jsonb,
    'then the review queue, open and claimed items'
);
SELECT is(
    (
        SELECT bool_and(i ? 'likely_cause' AND i ->> 'action' IS NOT NULL)
        FROM guard.daily_reports AS d, jsonb_array_elements(d.top_issues) AS i
        WHERE d.report_date = '2026-01-10' AND d.company_id = 9001
    ),
    TRUE,
    'each top issue says its likely cause and what to do'
);

SELECT results_eq(
    $$SELECT total_calls, inconsistent_calls, inconsistency_rate_pct, auto_corrected,
             manual_reviews, open_review_items
      FROM guard.daily_reports WHERE report_date = '2026-01-10' ORDER BY company_id$$,
    $$VALUES (4, 3, 75.00::numeric(6, 2), 3, 2, 3), (1, 0, 0.00::numeric(6, 2), 0, 0, 0)$$,
    'totals, inconsistent calls (three of four), rate, corrections of the day (not the next '
    || 'midnight''s), reviews created, open and claimed items'
);

SELECT is(
    (
        SELECT by_rule FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '{"I1_call_direction": 2, "I3_appointment_flags": 1, "I4_booked_outcome": 1,
      "I5_tenant_link": 1, "I6_voice_appointment_call": 1, "I7_booking_failures": 2}'::jsonb,
    'by rule: the day''s calls and appointments whenever found, other alerts of the day; '
    || 'not the day before''s rows, not the job alert; an alert counts for its check''s rule'
);

SELECT is(
    (
        SELECT by_check FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '{"call_without_direction": 2, "flags_contradict_appointments": 1,
      "booked_without_appointment": 1, "orphaned_voice_appointment": 1, "cross_tenant_link": 1,
      "booking_failure_anomaly": 1, "recent_booking_failure": 1}'::jsonb,
    'by check: the same alerts per check'
);

SELECT is(
    (
        SELECT jsonb_path_query_array(top_issues, '$[*].rule_id')
        FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '["I1_call_direction", "I7_booking_failures", "I3_appointment_flags", "I4_booked_outcome",
      "I5_tenant_link"]'::jsonb,
    'top issues: the five largest, ties by rule id'
);

SELECT is(
    (
        SELECT top_issues -> 0 -> 'count'
        FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '2'::jsonb,
    'a top issue carries its count'
);

SELECT is(
    (
        SELECT trend FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9001
    ),
    '{"previous_days": 2, "previous_mean_rate_pct": 35.00, "delta_pct_points": 40.00,
      "direction": "worse", "previous_mean_recovery_rate_pct": 60.00,
      "recovery_delta_pct_points": -47.50, "previous_mean_detection_latency_p95_seconds": 120.00,
      "detection_latency_delta_seconds": 465.00}'::jsonb,
    'trend: against the means of the stored reports of the 7 days before (a day without a '
    || 'latency measure is not in its mean)'
);

SELECT is(
    (
        SELECT trend ->> 'direction' FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9002
    ),
    'no_data',
    'no stored days before: no trend'
);

SELECT is(
    (
        SELECT top_issues FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9002
    ),
    '[]'::jsonb,
    'a company without alerts has no top issues'
);

-- Re-running the day replaces its rows.
INSERT INTO public.calls (id, company_id, direction, created_at)
VALUES (90008, 9002, 'inbound', '2026-01-10 10:00:00+00');
SELECT lives_ok($$SELECT guard.daily_report('2026-01-10')$$, 'a day can be generated again');
SELECT is(
    (
        SELECT count(*)::int FROM guard.daily_reports
        WHERE report_date = '2026-01-10'
    ),
    2,
    'still one row per company and day'
);
SELECT is(
    (
        SELECT total_calls FROM guard.daily_reports
        WHERE report_date = '2026-01-10' AND company_id = 9002
    ),
    2,
    'the new run''s numbers replaced the old ones'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.daily_reports
        WHERE report_date < '2026-01-10'
    ),
    4,
    'other days are left alone'
);

-- The BI view.
SELECT results_eq(
    $$SELECT company_name, consistent_calls, consistency_rate_pct, auto_correction_rate_pct,
             top_rule, previous_7_days_rate_pct, trend_delta_pct_points, trend_direction
      FROM guard.daily_report_view WHERE report_date = '2026-01-10' ORDER BY company_id$$,
    $$VALUES ('Praxis A', 1, 25.00::numeric, 60.00::numeric, 'I1_call_direction',
              35.00::numeric, 40.00::numeric, 'worse'),
             ('Salon B', 2, 100.00::numeric, NULL::numeric, NULL, NULL::numeric, NULL::numeric,
              'no_data')$$,
    'the view unpacks rates, the top rule and the trend'
);
SELECT is(
    (
        SELECT count(*)::int FROM information_schema.columns
        WHERE
            table_schema = 'guard' AND table_name IN ('daily_report_view', 'kpis')
            AND column_name ~ 'number|phone'
    ),
    0,
    'no phone numbers in the report views'
);
SELECT is(
    (
        SELECT reloptions FROM pg_class
        WHERE oid = 'guard.daily_report_view'::regclass
    ),
    '{security_invoker=true}'::text[],
    'the view runs with the reader''s rights'
);

-- An alert whose check was removed from guard.checks since has no rule: it counts under
-- (unknown) by rule and under its own id by check.
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at
) VALUES (
    'retired_check:call:90006', 'retired_check', 9002, 'call', 90006, 'low', 'x',
    '2026-01-10 10:00+00'
);
SELECT results_eq(
    $$SELECT by_rule, by_check FROM guard.daily_report('2026-01-10') WHERE company_id = 9002$$,
    $$VALUES ('{"(unknown)": 1}'::jsonb, '{"retired_check": 1}'::jsonb)$$,
    'a removed check''s alerts: rule (unknown), check kept'
);

-- A day with no calls at all still gives a row per company, with zero rates.
SELECT results_eq(
    $$SELECT total_calls, inconsistency_rate_pct FROM guard.daily_report('2025-06-01') ORDER BY company_id$$,
    $$VALUES (0, 0.00::numeric(6, 2)), (0, 0.00::numeric(6, 2))$$,
    'an empty day: zero calls, zero rate'
);

-- The report job's command reports yesterday (UTC).
SELECT is(
    (
        SELECT command FROM guard.jobs
        WHERE name = 'daily_report'
    ),
    'SELECT count(*) FROM guard.daily_report(CAST(timezone(''UTC'', now()) AS date) - 1)',
    'the daily_report job stores yesterday''s report'
);

-- A stored report covers a whole UTC day: today and later are refused, and nothing is stored.
SELECT throws_ok(
    $$SELECT count(*) FROM guard.daily_report((now() AT TIME ZONE 'UTC')::date)$$,
    '22023',
    NULL,
    'today (UTC) has not ended: its report is not stored'
);
SELECT throws_ok(
    $$SELECT count(*) FROM guard.daily_report('2030-01-01')$$,
    '22023',
    NULL,
    'a future day is refused'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.daily_reports
        WHERE report_date >= (now() AT TIME ZONE 'UTC')::date
    ),
    0,
    'no report of an unfinished day is stored'
);

-- compute_daily_report computes without storing, with the same rows daily_report stores, and
-- the trend of a day never counts that day's own stored report.
SELECT is(
    (SELECT count(*)::int FROM guard.compute_daily_report('2030-01-01')),
    (SELECT count(*)::int FROM public.companies),
    'an unfinished day is computed: one row per company'
);
SELECT results_eq(
    $$SELECT company_id, total_calls, inconsistent_calls, inconsistency_rate_pct, by_rule, by_check,
             trend FROM guard.compute_daily_report('2026-01-10') ORDER BY company_id$$,
    $$SELECT company_id, total_calls, inconsistent_calls, inconsistency_rate_pct, by_rule, by_check,
             trend FROM guard.daily_reports WHERE report_date = '2026-01-10' ORDER BY company_id$$,
    'computing a stored day again gives its stored rows (its own report is not in its trend)'
);

-- A correction exactly at a day's first instant is that day's; one exactly at the next day's
-- first instant is the next day's, not this one's.
INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason, corrected_at)
VALUES
('I1_call_direction', 9002, 'call', 90006, 'test', '2026-02-09 23:59:59.999999+00'),
('I1_call_direction', 9002, 'call', 90006, 'test', '2026-02-10 00:00:00+00'),
('I1_call_direction', 9002, 'call', 90007, 'test', '2026-02-11 00:00:00+00'),
('I1_call_direction', 9002, 'call', 90007, 'test', '2026-02-11 00:00:00.000001+00');
SELECT results_eq(
    $$SELECT d.day, r.auto_corrected
      FROM unnest('{2026-02-09, 2026-02-10, 2026-02-11}'::date[]) AS d (day),
          guard.compute_daily_report(d.day) AS r
      WHERE r.company_id = 9002 ORDER BY d.day$$,
    $$VALUES ('2026-02-09'::date, 1), ('2026-02-10', 1), ('2026-02-11', 2)$$,
    'a correction at midnight counts in the day it starts, not in the day it ends'
);

SELECT * FROM finish();
ROLLBACK;
