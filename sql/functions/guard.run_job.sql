-- Run one job now: what pg_cron and `guard jobs run` call. At most one run per job at a time (a
-- transaction-level advisory lock: a concurrent second run returns at once and says so), nothing
-- on a replica, no detection on a logical subscriber of the booking tables. The command from guard.jobs runs in a sub-transaction, so a failure rolls back
-- the job's work but is itself recorded in guard.job_runs and raised as a job_failed alert; a
-- success resolves the job's alerts. Every run ends with the missed-run check of all jobs, which
-- never waits: while another session's check holds its lock, this run skips it.
-- Returns "<job>: succeeded|failed|skipped ..." (a failure is reported, not raised). A statement
-- timeout or a cancel of the run is recorded as a failure too.
CREATE OR REPLACE FUNCTION guard.run_job(job_name text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    job_command text;
    started timestamptz := clock_timestamp();
    finished timestamptz;
    run_status text := 'succeeded';
    run_error text;
    run_sqlstate text;
    elapsed_ms double precision;
    subscription text;
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
        EXECUTE job_command;
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

    finished := clock_timestamp();
    elapsed_ms := 1000 * extract(EPOCH FROM finished - started);
    INSERT INTO guard.job_runs (
        job_name, started_at, finished_at, status, error, sqlstate, duration_ms, runner
    ) VALUES (
        run_job.job_name, started, finished, run_status, run_error, run_sqlstate, elapsed_ms,
        coalesce(current_setting('application_name', TRUE), '')
    );

    IF run_status = 'failed' THEN
        PERFORM guard.open_job_alert(
            'job_failed',
            job_name,
            format('job %s failed: %s', job_name, run_error),
            jsonb_build_object('sqlstate', run_sqlstate, 'error', run_error, 'started_at', started)
        );
    ELSE
        PERFORM guard.resolve_job_alert('job_failed', job_name);
    END IF;
    PERFORM guard.check_job_heartbeats();

    IF run_status = 'failed' THEN
        RETURN format('%s: failed after %s ms: %s', job_name, round(elapsed_ms::numeric), run_error);
    END IF;
    RETURN format('%s: succeeded in %s ms', job_name, round(elapsed_ms::numeric));
END;
$$;
