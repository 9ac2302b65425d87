-- Rollback of 0073_check_sweeps. The sweep job (a row of sql/data/) goes too: it reads the column
-- dropped here. Its runs stay in guard.job_runs, as those of a removed job do; its pg_cron entry
-- goes when the definitions of the level rolled back to schedule the jobs again
-- (guard.schedule_jobs unschedules what guard.jobs no longer has).
DELETE FROM guard.jobs
WHERE name = 'sweep';

ALTER TABLE guard.checks
DROP COLUMN sweep;
