-- Unschedule the jobs from pg_cron (when it is installed here), then drop what 0009 created.
UPDATE guard.jobs SET enabled = FALSE;

DO $$
BEGIN
    RAISE NOTICE '%', guard.schedule_jobs();
END;
$$;

DROP FUNCTION guard.schedule_jobs();

DROP FUNCTION guard.run_job(text);

DROP FUNCTION guard.daily_report(date);

DROP FUNCTION guard.apply_retention();

DROP FUNCTION guard.check_job_heartbeats();

DROP FUNCTION guard.resolve_job_alert(text, text);

DROP FUNCTION guard.open_job_alert(text, text, text, jsonb);

DROP VIEW guard.kpis;

DROP VIEW guard.daily_report_view;

DROP VIEW guard.job_status;

DROP TABLE guard.job_runs;

DROP TABLE guard.jobs;

DELETE FROM guard.alerts
WHERE rule_id IN ('job_failed', 'job_missed');

DELETE FROM guard.rules
WHERE id IN ('job_failed', 'job_missed');

DELETE FROM guard.settings
WHERE key IN (
    'target_breaker_recovery_seconds', 'target_review_queue_max', 'target_false_positive_rate_pct'
);
