-- What the operational and report views say at their edges:
-- - guard.job_status: a job that never ran is due now; one that ran is due an interval after it
--   started;
-- - guard.detection_passes: a pass counts its warned and its failed checks apart, and neither
--   counts a check that passed or has no outcome (a run recorded before thresholds existed);
-- - guard.daily_report_view: a day without calls has no consistency rate (not 100 %).
BEGIN;
SELECT plan(3);

INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description) VALUES
('never_ran', '* * * * *', 60, 'SELECT 1', 'test job'),
('ran', '* * * * *', 60, 'SELECT 1', 'test job');
INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, duration_ms) VALUES
('ran', now() - interval '10 s', now() - interval '9 s', 'succeeded', 1000);
SELECT results_eq(
    $$SELECT job_name, next_due_at FROM guard.job_status
      WHERE job_name IN ('never_ran', 'ran') ORDER BY job_name$$,
    $$VALUES ('never_ran', now()), ('ran', now() + interval '50 s')$$,
    'job_status: a job that never ran is due now, one that ran an interval after it started'
);

INSERT INTO guard.detection_runs (
    pass_started_at, check_id, rule_id, duration_ms, offending, opened, repeated, resolved, outcome
) VALUES
('2031-01-01 00:00:00+00', 'a', 'r', 1, 0, 0, 0, 0, 'warn'),
('2031-01-01 00:00:00+00', 'b', 'r', 1, 0, 0, 0, 0, 'fail'),
('2031-01-01 00:00:00+00', 'c', 'r', 1, 0, 0, 0, 0, 'pass'),
('2031-01-01 00:00:00+00', 'd', 'r', 1, 0, 0, 0, 0, 'pass'),
('2031-01-01 00:00:00+00', 'e', 'r', 1, 0, 0, 0, 0, NULL);
SELECT results_eq(
    $$SELECT checks, checks_warned, checks_failed FROM guard.detection_passes
      WHERE pass_started_at = '2031-01-01 00:00:00+00'$$,
    $$VALUES (5, 1, 1)$$,
    'detection_passes: one warned and one failed of five checks (two passed, one without an outcome)'
);

INSERT INTO public.companies (id, name) VALUES (811, 'no calls that day');
INSERT INTO guard.daily_reports (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items
) VALUES
('2031-01-01', 811, 0, 0, 0, 0, 0, 0),
('2031-01-02', 811, 4, 1, 25, 0, 0, 0);
SELECT results_eq(
    $$SELECT report_date, consistency_rate_pct FROM guard.daily_report_view
      WHERE company_id = 811 ORDER BY report_date$$,
    $$VALUES (date '2031-01-01', NULL::numeric), (date '2031-01-02', 75.00)$$,
    'daily_report_view: a day without calls has no consistency rate; a day with calls has one'
);

SELECT * FROM finish();
ROLLBACK;
