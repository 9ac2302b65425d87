-- The stored daily reports for BI tools: one row per day and company, with the company's name,
-- the rates as percentages and the trend unpacked. No personal data (no phone numbers).
CREATE OR REPLACE VIEW guard.daily_report_view WITH (security_invoker = TRUE) AS
SELECT
    d.report_date,
    d.company_id,
    co.name AS company_name,
    d.total_calls,
    d.total_calls - d.inconsistent_calls AS consistent_calls,
    d.inconsistent_calls,
    d.inconsistency_rate_pct,
    CASE WHEN d.total_calls > 0 THEN 100 - d.inconsistency_rate_pct END AS consistency_rate_pct,
    d.auto_corrected,
    d.manual_reviews,
    round(100.0 * d.auto_corrected / nullif(d.auto_corrected + d.manual_reviews, 0), 2)
        AS auto_correction_rate_pct,
    d.open_review_items,
    d.top_issues -> 0 ->> 'rule_id' AS top_rule,
    (d.trend ->> 'previous_mean_rate_pct')::numeric AS previous_7_days_rate_pct,
    (d.trend ->> 'delta_pct_points')::numeric AS trend_delta_pct_points,
    d.trend ->> 'direction' AS trend_direction,
    d.by_rule,
    d.top_issues,
    d.generated_at,
    d.by_check,
    d.total_appointments,
    d.recovery_rate_pct,
    d.detection_latency_p95_seconds,
    d.action_items,
    (d.trend ->> 'previous_mean_recovery_rate_pct')::numeric AS previous_7_days_recovery_rate_pct,
    (d.trend ->> 'recovery_delta_pct_points')::numeric AS recovery_delta_pct_points,
    (d.trend ->> 'previous_mean_detection_latency_p95_seconds')::numeric
        AS previous_7_days_detection_latency_p95_seconds,
    (d.trend ->> 'detection_latency_delta_seconds')::numeric AS detection_latency_delta_seconds
FROM guard.daily_reports AS d
LEFT JOIN public.companies AS co ON d.company_id = co.id;
