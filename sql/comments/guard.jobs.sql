-- What BI tools show for guard.jobs (docs/bi-columns.md is generated from these comments).
COMMENT ON TABLE guard.jobs IS
'one row per scheduled Booking Guard job: what it runs and when (UTC); shipped by migrations, changed by a DBA; pg_cron or `guard jobs run` runs the enabled ones';

COMMENT ON COLUMN guard.jobs.name IS 'the job''s name (shipped: `detect`, `reconcile`, `review_sweep`, `sweep`, `daily_report`, `retention`); what `guard.job_runs.job_name` and job alerts name (pg_cron job `guard_<name>`)';
COMMENT ON COLUMN guard.jobs.schedule IS 'when it runs: a cron expression in UTC (`*/5 * * * *`), followed by pg_cron and `guard jobs run`';
COMMENT ON COLUMN guard.jobs.interval_seconds IS 'seconds between two runs (≥ 60): next due is last start + this; no success within twice this makes it overdue (a `job_missed` alert)';
COMMENT ON COLUMN guard.jobs.command IS 'the SQL it runs (`SELECT count(*) FROM guard.detect()`, ...), fixed text run by `guard.run_job`';
COMMENT ON COLUMN guard.jobs.description IS 'what the job does, in one sentence';
COMMENT ON COLUMN guard.jobs.enabled IS '`false`: switched off by a DBA: not scheduled by pg_cron, skipped by `guard jobs run` (unless named with `--job`), never overdue';
COMMENT ON COLUMN guard.jobs.updated_at IS 'when the row last changed; a job without a success since then counts as overdue from this time';
