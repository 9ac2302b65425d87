-- Run one job now: what pg_cron and `guard jobs run` call. At most one run per job at a time (a
-- transaction-level advisory lock: a concurrent second run returns at once and says so), nothing
-- on a replica, no detection on a logical subscriber of the booking tables. The command from guard.jobs runs in a sub-transaction, so a failure rolls back
-- the job's work but is itself recorded in guard.job_runs and raised as a job_failed alert; a
-- success resolves the job's alerts. Every run ends with the missed-run check of all jobs, which
-- never waits: while another session's check holds its lock, this run skips it.
-- Returns "<job>: succeeded|failed|skipped ..." (a failure is reported, not raised). A statement
-- timeout or a cancel of the run is recorded as a failure too. The timer of statement_timeout
-- (a login's own, say 300 ms) fires once per statement: when it fires after the job's command,
-- while the run is being recorded, the recording is tried once more (it now has no timer; its
-- lock waits are bounded by lock_timeout = that statement_timeout), and when it fires in the
-- missed-run check, that check is left to the next run. So a run that reaches its command is
-- recorded as that job's success or failure (guard.record_job_run), never lost with the others'
-- turn: `guard jobs run` goes on with the next job either way. A detection pass the timeout cut
-- keeps what it ran (guard.run_checks) and says so in booking_guard.checks_cut: the run is
-- recorded as failed, with that, though its work is committed.
CREATE OR REPLACE FUNCTION guard.run_job(job_name text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    job_command text;
    started timestamptz := clock_timestamp();
    run_status text := 'succeeded';
    run_error text;
    run_sqlstate text;
    elapsed_ms double precision;
    subscription text;
    caller_lock_timeout text := current_setting('lock_timeout');
    cut text;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN format('%s: skipped, this server is a replica (jobs run on the primary)', job_name);
    END IF;
    -- A logical subscriber of the booking tables (a warehouse copy): its rows come from the
    -- publisher, where detection runs and the alerts are; detecting or correcting here would
    -- open alerts the publisher does not have. The same jobs are left out of the missed-run
    -- check there (guard.check_job_heartbeats).
    IF job_name IN ('detect', 'sweep', 'reconcile') THEN
        subscription := guard.booking_subscription();
        IF subscription IS NOT NULL THEN
            RETURN format(
                '%s: skipped, this database subscribes to the booking tables (subscription %s):'
                ' detection runs on the publisher',
                job_name, subscription
            );
        END IF;
    END IF;
    SELECT j.command INTO job_command FROM guard.jobs AS j WHERE j.name = run_job.job_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard job "%"', job_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended('booking-guard:job:' || job_name, 0)) THEN
        RETURN format('%s: skipped, already running in another session', job_name);
    END IF;

    BEGIN
        PERFORM set_config('booking_guard.checks_cut', '', TRUE);
        EXECUTE job_command;
        -- A detection pass (or sweep) that its statement timeout cut keeps the checks it ran
        -- and names the check it cut: the run is the job's failure all the same.
        cut := nullif(current_setting('booking_guard.checks_cut', TRUE), '');
        IF cut IS NOT NULL THEN
            run_status := 'failed';
            run_sqlstate := '57014';
            run_error := format(
                'canceling statement due to statement timeout (ran longer than statement_timeout'
                || ' = %s): %s',
                current_setting('statement_timeout'), cut
            );
        END IF;
    EXCEPTION
        -- OTHERS does not catch a cancel. A statement timeout (the runner arms
        -- detection_statement_timeout_ms for the detect job) is a failure of the job to record;
        -- the timer fires once, so the recording below still runs.
        WHEN query_canceled THEN
            GET STACKED DIAGNOSTICS run_error = MESSAGE_TEXT, run_sqlstate = RETURNED_SQLSTATE;
            run_error := format(
                '%s (ran longer than statement_timeout = %s)', run_error, current_setting('statement_timeout')
            );
            run_status := 'failed';
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS run_error = MESSAGE_TEXT, run_sqlstate = RETURNED_SQLSTATE;
            run_status := 'failed';
    END;

    BEGIN
        elapsed_ms := guard.record_job_run(job_name, started, run_status, run_error, run_sqlstate);
    EXCEPTION WHEN query_canceled THEN
        IF NOT guard.statement_timed_out() THEN
            RAISE;
        END IF;
        PERFORM set_config('lock_timeout', current_setting('statement_timeout'), TRUE);
        elapsed_ms := guard.record_job_run(job_name, started, run_status, run_error, run_sqlstate);
        PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
    END;
    -- Every job's missed runs: not this job's work, and the next run of any job checks again.
    BEGIN
        PERFORM guard.check_job_heartbeats();
    EXCEPTION WHEN query_canceled THEN
        IF NOT guard.statement_timed_out() THEN
            RAISE;
        END IF;
    END;

    IF run_status = 'failed' THEN
        RETURN format('%s: failed after %s ms: %s', job_name, round(elapsed_ms::numeric), run_error);
    END IF;
    RETURN format('%s: succeeded in %s ms', job_name, round(elapsed_ms::numeric));
END;
$$;
