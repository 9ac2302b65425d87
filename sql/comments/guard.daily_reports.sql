-- What BI tools show for guard.daily_reports (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.daily_reports IS
'one row per UTC day and company: the stored daily consistency report, written by the `daily_report` job (02:00 UTC, for yesterday) or `guard report --date`; `guard.daily_report_view` unpacks it';

COMMENT ON COLUMN guard.daily_reports.report_date IS 'the UTC day (only days that have ended are stored)';
COMMENT ON COLUMN guard.daily_reports.company_id IS 'the company';
COMMENT ON COLUMN guard.daily_reports.total_calls IS 'calls created that day';
COMMENT ON COLUMN guard.daily_reports.inconsistent_calls IS 'the day''s calls that at least one of the day''s alerts concerns';
COMMENT ON COLUMN guard.daily_reports.inconsistency_rate_pct IS '`inconsistent_calls / total_calls`, percent, 2 decimals (0 when there were no calls)';
COMMENT ON COLUMN guard.daily_reports.auto_corrected IS 'corrections made automatically that day (rows of `guard.correction_audit`)';
COMMENT ON COLUMN guard.daily_reports.manual_reviews IS 'review items created that day (problems left to a person)';
COMMENT ON COLUMN guard.daily_reports.open_review_items IS 'review items open or claimed when the report was generated';
COMMENT ON COLUMN guard.daily_reports.by_rule IS 'jsonb: the day''s alerts per rule (an alert counts for its check''s rule), `{"I1_call_direction": 12, ...}`';
COMMENT ON COLUMN guard.daily_reports.top_issues IS 'jsonb: the five rules with most alerts, `[{"rule_id", "count", "severity", "description", "likely_cause", "action"}]` (cause and action from `guard.rules`)';
COMMENT ON COLUMN guard.daily_reports.trend IS 'jsonb: against the reports stored for the 7 days before: `previous_days`, `previous_mean_rate_pct`, `delta_pct_points` (positive is worse), `direction` (`better`, `worse`, `same`, `no_data`); `previous_mean_recovery_rate_pct`, `recovery_delta_pct_points` (positive is better), `previous_mean_detection_latency_p95_seconds`, `detection_latency_delta_seconds` (positive is slower), NULL where either side measured none';
COMMENT ON COLUMN guard.daily_reports.generated_at IS 'when the row was generated';
COMMENT ON COLUMN guard.daily_reports.by_check IS 'jsonb: the same alerts per check, `{"call_without_direction": 12, ...}`';
COMMENT ON COLUMN guard.daily_reports.total_appointments IS 'appointments created that day (booked, whatever became of them)';
COMMENT ON COLUMN guard.daily_reports.recovery_rate_pct IS 'of the day''s alerts, percent resolved as fixed or settled in review by the time the report was generated; NULL when there were none';
COMMENT ON COLUMN guard.daily_reports.detection_latency_p95_seconds IS '95th percentile of `first_seen_at - coalesce(written_at, observed_at)` of the day''s alerts opened by detection (the commit that made a row bad -> its alert); NULL when there were none';
COMMENT ON COLUMN guard.daily_reports.action_items IS 'jsonb: what a person should do, most urgent first: `[{"kind": "open_alerts", "rule_id", "severity", "count", "action"}, {"kind": "review_queue", "count", "action"}]` (the day''s alerts still open, per rule; the review items open or claimed)';
