-- The command pg_cron is given for a job (guard.schedule_jobs, and what `guard db verify`
-- expects in cron.job): the job's own command (guard.job_command), except where pg_cron runs an
-- 'N seconds' job every minute (before 1.5, guard.cron_schedule). There the minute's command runs
-- the job at the minute's start and again N, 2N, ... seconds into that minute, each run
-- committed as it ends, so detect_queue checks the queue every 15 s on pg_cron 1.4 as on 1.5: a
-- phantom booking is alerted within its grace period plus 15 s with pg_cron alone. Run once a
-- minute, a claim still in its grace at one run waited for the next: up to the grace period plus
-- a minute (90 s measured, bench/detection_latency.py).
-- One DO block, pg_cron's whole command: a DO alone in its message may commit, and pg_cron waits
-- for one result. (Statements separated by COMMIT commit as well, but pg_cron 1.4 then waits for
-- each next result and starts or records no other job meanwhile.) A run that overran the next
-- time skips it; none starts after the minute is over (pg_cron starts the next one then). The
-- wait ends its own transaction: a run's now() (the queue's due_at, an alert's first_seen_at)
-- is then when the run began, not when the wait did (which kept a call due meanwhile waiting 15 s
-- more).
-- A run that leaves more due (booking_guard.run_again: a drain that took a whole batch) is
-- followed at once by the next, each committed, until none is left or the minute is over: a
-- flood is drained as it comes (one batch a turn took 1,000 calls per 15 s).
-- A job whose command arms something first (detect's statement_timeout) keeps its command.
CREATE OR REPLACE FUNCTION guard.cron_command(job_name text, job_schedule text)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog
RETURN
CASE
    WHEN
        guard.cron_schedule(job_schedule) IS DISTINCT FROM job_schedule
        AND guard.job_command(job_name) = format('SELECT guard.run_job(%L)', job_name)
        THEN format(
            'DO $run$ DECLARE minute_start timestamptz := pg_catalog.date_trunc(''minute'','
            || ' pg_catalog.clock_timestamp()); next_at timestamptz; again boolean; BEGIN LOOP'
            || ' PERFORM guard.run_job(%L); again := pg_catalog.current_setting('
            || '''booking_guard.run_again'', TRUE) IS NOT DISTINCT FROM ''on''; COMMIT;'
            || ' EXIT WHEN pg_catalog.clock_timestamp() >= minute_start + interval ''1 minute'';'
            || ' CONTINUE WHEN again;'
            || ' next_at := minute_start + pg_catalog.make_interval(secs => %2$s * (pg_catalog.floor('
            || 'pg_catalog.date_part(''epoch'', pg_catalog.clock_timestamp() - minute_start) / %2$s)'
            || ' + 1)); EXIT WHEN next_at >= minute_start + interval ''1 minute'';'
            || ' PERFORM pg_catalog.pg_sleep_until(next_at); COMMIT; END LOOP; END $run$',
            job_name,
            greatest(1, substring(job_schedule FROM '[0-9]+')::integer)
        )
    ELSE guard.job_command(job_name)
END;
