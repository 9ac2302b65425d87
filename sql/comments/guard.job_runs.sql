-- What BI tools show for guard.job_runs (docs/bi-columns.md is generated from these comments).
COMMENT ON TABLE guard.job_runs IS
'one row per finished run of a scheduled job, succeeded or failed: the jobs'' heartbeats, written by `guard.run_job`; kept 7 days (`retention_job_runs_days`), each job''s newest run and success always';

COMMENT ON COLUMN guard.job_runs.id IS 'the run''s id, increasing';
COMMENT ON COLUMN guard.job_runs.job_name IS 'the job (`guard.jobs.name`: `detect`, `reconcile`, `review_sweep`, `sweep`, `daily_report`, `retention`)';
COMMENT ON COLUMN guard.job_runs.started_at IS 'when the run started';
COMMENT ON COLUMN guard.job_runs.finished_at IS 'when the run finished';
COMMENT ON COLUMN guard.job_runs.status IS '`succeeded`, or `failed` (its work rolled back, a `job_failed` alert opened)';
COMMENT ON COLUMN guard.job_runs.error IS 'the error message of a failed run (a timeout says so); NULL when it succeeded';
COMMENT ON COLUMN guard.job_runs.sqlstate IS 'the SQLSTATE of a failed run''s error (`57014`: statement timeout); NULL when it succeeded';
COMMENT ON COLUMN guard.job_runs.duration_ms IS 'how long the run took, ms';
COMMENT ON COLUMN guard.job_runs.runner IS 'who ran it: the session''s application name (`pg_cron` under pg_cron, `guard jobs run` for the external runner); empty when none was set';
