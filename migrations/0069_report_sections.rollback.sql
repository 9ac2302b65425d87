-- Rollback of 0069_report_sections. guard.daily_report_view (a definition) reads the new report
-- columns, so it goes first; the definitions of the level rolled back to come with it
-- (docs/dba.md, "Rolling back").
DROP VIEW IF EXISTS guard.daily_report_view;

ALTER TABLE guard.rules
DROP COLUMN likely_cause,
DROP COLUMN action;

ALTER TABLE guard.daily_reports
DROP COLUMN total_appointments,
DROP COLUMN recovery_rate_pct,
DROP COLUMN detection_latency_p95_seconds,
DROP COLUMN action_items;
