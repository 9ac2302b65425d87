-- pg_cron's schedule of the jobs, brought in line with guard.jobs after anything was applied (a
-- job's command, guard.job_command, may have changed). Where pg_cron is not installed in this
-- database nothing happens: `guard jobs run` runs the jobs from outside.
DO $$
BEGIN
    PERFORM guard.schedule_jobs();
END;
$$;
