-- What BI tools show for guard.daily_report_view (docs/bi-columns.md is generated from these
-- comments): the columns it derives; those it shows as guard.daily_reports stores them get that
-- table's comments (sql/comments/guard.report_views.sql).
COMMENT ON VIEW guard.daily_report_view IS
'one row per UTC day and company: the stored daily report (the `daily_report` job at 02:00 UTC for yesterday, or `guard report --date D`)';

COMMENT ON COLUMN guard.daily_report_view.company_name IS 'the company''s name';
COMMENT ON COLUMN guard.daily_report_view.consistent_calls IS '`total_calls - inconsistent_calls`';
COMMENT ON COLUMN guard.daily_report_view.consistency_rate_pct IS '`100 - inconsistency_rate_pct`; NULL when there were no calls';
COMMENT ON COLUMN guard.daily_report_view.auto_correction_rate_pct IS '`auto_corrected / (auto_corrected + manual_reviews)`, percent; NULL when both are 0';
COMMENT ON COLUMN guard.daily_report_view.top_rule IS 'the rule with the most of the day''s alerts (an alert counts for its check''s rule)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_rate_pct IS 'mean `inconsistency_rate_pct` of the reports stored for the 7 days before (NULL if none)';
COMMENT ON COLUMN guard.daily_report_view.trend_delta_pct_points IS '`inconsistency_rate_pct - previous_7_days_rate_pct` (positive is worse)';
COMMENT ON COLUMN guard.daily_report_view.trend_direction IS '`better`, `worse`, `same`, or `no_data` (no stored day before)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_recovery_rate_pct IS 'mean `recovery_rate_pct` of the reports stored for the 7 days before (NULL if none measured one)';
COMMENT ON COLUMN guard.daily_report_view.recovery_delta_pct_points IS '`recovery_rate_pct - previous_7_days_recovery_rate_pct` (positive is better; NULL if either is NULL)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_detection_latency_p95_seconds IS 'mean `detection_latency_p95_seconds` of the reports stored for the 7 days before (NULL if none measured one)';
COMMENT ON COLUMN guard.daily_report_view.detection_latency_delta_seconds IS '`detection_latency_p95_seconds - previous_7_days_detection_latency_p95_seconds` (positive is slower; NULL if either is NULL)';
