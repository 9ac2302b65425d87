-- Stores the daily report of one UTC day that has ended (guard.compute_daily_report), one row per
-- company, in guard.daily_reports: running a day again replaces that day's rows (a report, not
-- history). A day that has not ended (today or later in UTC, the time zone of every report) is
-- refused: its report would be incomplete, and BI totals over guard.daily_reports would count
-- it. The daily_report job stores yesterday's.
CREATE OR REPLACE FUNCTION guard.daily_report(report_day date)
RETURNS SETOF guard.daily_reports
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF report_day >= (now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'the report of % is not stored: that UTC day has not ended', report_day
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'a stored report covers a whole UTC day; `guard report --date` shows an'
            ' unfinished day without storing it';
    END IF;
    DELETE FROM guard.daily_reports AS d WHERE d.report_date = report_day;
    RETURN QUERY
    INSERT INTO guard.daily_reports AS d (
        report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
        auto_corrected, manual_reviews, open_review_items, by_rule, top_issues, trend,
        generated_at, by_check, total_appointments, recovery_rate_pct,
        detection_latency_p95_seconds, action_items
    )
    SELECT
        r.report_date,
        r.company_id,
        r.total_calls,
        r.inconsistent_calls,
        r.inconsistency_rate_pct,
        r.auto_corrected,
        r.manual_reviews,
        r.open_review_items,
        r.by_rule,
        r.top_issues,
        r.trend,
        r.generated_at,
        r.by_check,
        r.total_appointments,
        r.recovery_rate_pct,
        r.detection_latency_p95_seconds,
        r.action_items
    FROM guard.compute_daily_report(report_day) AS r
    ORDER BY r.company_id
    RETURNING d.*;
END;
$$;
