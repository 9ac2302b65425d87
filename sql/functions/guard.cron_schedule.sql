-- The schedule pg_cron is given for a job's schedule (guard.schedule_jobs, and what
-- `guard db verify` expects in cron.job): the job's own text, except that pg_cron before 1.5
-- (Debian 12 ships 1.4) has minutes only and refuses 'N seconds': such a job runs every minute
-- there. `guard jobs run` follows the job's own schedule.
CREATE OR REPLACE FUNCTION guard.cron_schedule(job_schedule text)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog
RETURN
CASE
    WHEN
        job_schedule ~* '^\s*[0-9]+\s+seconds?\s*$'
        AND EXISTS (
            SELECT
            FROM pg_catalog.pg_extension AS e
            WHERE
                e.extname = 'pg_cron'
                AND string_to_array(substring(e.extversion FROM '^[0-9]+(?:\.[0-9]+)*'), '.')::integer[]
                < ARRAY[1, 5]
        )
        THEN '* * * * *'
    ELSE job_schedule
END;
