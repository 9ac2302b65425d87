-- What BI tools show for guard.daily_report_view (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON VIEW guard.daily_report_view IS
'one row per UTC day and company: the stored daily report (the `daily_report` job at 02:00 UTC for yesterday, or `guard report --date D`)';

COMMENT ON COLUMN guard.daily_report_view.report_date IS 'the UTC day';
COMMENT ON COLUMN guard.daily_report_view.company_id IS 'the company';
COMMENT ON COLUMN guard.daily_report_view.company_name IS 'the company''s name';
COMMENT ON COLUMN guard.daily_report_view.total_calls IS 'calls created that day';
COMMENT ON COLUMN guard.daily_report_view.consistent_calls IS '`total_calls - inconsistent_calls`';
COMMENT ON COLUMN guard.daily_report_view.inconsistent_calls IS 'the day''s calls that at least one of the day''s alerts concerns';
COMMENT ON COLUMN guard.daily_report_view.inconsistency_rate_pct IS '`inconsistent_calls / total_calls`, percent (0 when there were no calls)';
COMMENT ON COLUMN guard.daily_report_view.consistency_rate_pct IS '`100 - inconsistency_rate_pct`; NULL when there were no calls';
COMMENT ON COLUMN guard.daily_report_view.auto_corrected IS 'corrections made automatically that day (rows of `guard.correction_audit`)';
COMMENT ON COLUMN guard.daily_report_view.manual_reviews IS 'review items created that day (problems left to a person)';
COMMENT ON COLUMN guard.daily_report_view.auto_correction_rate_pct IS '`auto_corrected / (auto_corrected + manual_reviews)`, percent; NULL when both are 0';
COMMENT ON COLUMN guard.daily_report_view.open_review_items IS 'review items open or claimed when the report was generated';
COMMENT ON COLUMN guard.daily_report_view.top_rule IS 'the rule with the most of the day''s alerts (an alert counts for its check''s rule)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_rate_pct IS 'mean `inconsistency_rate_pct` of the reports stored for the 7 days before (NULL if none)';
COMMENT ON COLUMN guard.daily_report_view.trend_delta_pct_points IS '`inconsistency_rate_pct - previous_7_days_rate_pct` (positive is worse)';
COMMENT ON COLUMN guard.daily_report_view.trend_direction IS '`better`, `worse`, `same`, or `no_data` (no stored day before)';
COMMENT ON COLUMN guard.daily_report_view.by_rule IS 'jsonb: the day''s alerts per rule, `{"I1_call_direction": 12, ...}`';
COMMENT ON COLUMN guard.daily_report_view.top_issues IS 'jsonb: the five rules with most alerts, `[{"rule_id", "count", "severity", "description"}]`';
COMMENT ON COLUMN guard.daily_report_view.generated_at IS 'when the row was generated';
COMMENT ON COLUMN guard.daily_report_view.by_check IS 'jsonb: the same alerts per check, `{"call_without_direction": 12, ...}`';
