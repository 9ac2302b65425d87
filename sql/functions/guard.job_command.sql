-- The SQL that runs one job from outside, as pg_cron runs it (guard.schedule_jobs) and `guard
-- jobs run` does: `SELECT guard.run_job('<name>')`, and for the detect job a statement before it
-- that arms statement_timeout with detection_statement_timeout_ms for the rest of the
-- transaction (read when the job runs: a changed setting needs no new schedule). The timer of
-- statement_timeout starts with a top-level statement, so guard.run_job cannot arm it for
-- itself; pg_cron sends both statements in one message, one implicit transaction.
CREATE OR REPLACE FUNCTION guard.job_command(job_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
RETURN
CASE
    WHEN job_name = 'detect'
        THEN
            'SELECT pg_catalog.set_config(''statement_timeout'','
            || ' (guard.setting(''detection_statement_timeout_ms'') #>> ''{}'') || ''ms'','
            || ' TRUE); '
    ELSE ''
END
|| format('SELECT guard.run_job(%L)', job_name);
