-- What BI tools show for guard.job_status (docs/bi-columns.md is generated from these comments).
COMMENT ON VIEW guard.job_status IS
'one row per scheduled job: its newest run and whether it is overdue, for an "is Booking Guard running" panel';

COMMENT ON COLUMN guard.job_status.job_name IS 'the job (`guard.jobs.name`)';
COMMENT ON COLUMN guard.job_status.schedule IS 'when it runs: a cron expression in UTC';
COMMENT ON COLUMN guard.job_status.interval_seconds IS 'seconds between two runs';
COMMENT ON COLUMN guard.job_status.enabled IS 'false: switched off by a DBA, not run on its schedule and never overdue';
COMMENT ON COLUMN guard.job_status.description IS 'what the job does';
COMMENT ON COLUMN guard.job_status.last_started_at IS 'when the newest run started';
COMMENT ON COLUMN guard.job_status.last_finished_at IS 'when the newest run finished (NULL: never run)';
COMMENT ON COLUMN guard.job_status.last_status IS 'the newest run''s outcome: `succeeded` or `failed`';
COMMENT ON COLUMN guard.job_status.last_error IS 'the newest run''s error, when it failed';
COMMENT ON COLUMN guard.job_status.last_duration_ms IS 'how long the newest run took, ms';
COMMENT ON COLUMN guard.job_status.last_runner IS 'who ran it: the session''s application name, `pg_cron` under pg_cron';
COMMENT ON COLUMN guard.job_status.last_success_at IS 'when the newest successful run finished';
COMMENT ON COLUMN guard.job_status.next_due_at IS 'when an external runner runs it next (last start + interval)';
COMMENT ON COLUMN guard.job_status.overdue IS 'enabled and no success within twice its interval: a `job_missed` alert is open';
