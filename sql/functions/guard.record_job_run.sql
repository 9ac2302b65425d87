-- Record one finished run of a job: its heartbeat row in guard.job_runs (finished now), and its
-- job_failed alert opened or bumped (a failure) or resolved (a success). guard.run_job records
-- its runs with it; `guard jobs run` calls it for a run that could not record itself (the job's
-- statement raised before or after its own recording: a timeout, a permission), so that one
-- job's failure is that job's row and alert, and the runner goes on with the other jobs. started
-- NULL: the run started now (the runner could not learn when). Returns the run's milliseconds.
CREATE OR REPLACE FUNCTION guard.record_job_run(
    job_name text, started timestamptz, run_status text, run_error text, run_sqlstate text
)
RETURNS double precision
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    finished timestamptz := clock_timestamp();
    elapsed_ms double precision := 1000 * extract(EPOCH FROM finished - coalesce(started, finished));
BEGIN
    INSERT INTO guard.job_runs (
        job_name, started_at, finished_at, status, error, sqlstate, duration_ms, runner
    ) VALUES (
        record_job_run.job_name, coalesce(started, finished), finished, run_status, run_error,
        run_sqlstate, elapsed_ms, coalesce(current_setting('application_name', TRUE), '')
    );
    IF run_status = 'failed' THEN
        PERFORM guard.open_job_alert(
            'job_failed',
            record_job_run.job_name,
            format('job %s failed: %s', record_job_run.job_name, run_error),
            jsonb_build_object(
                'sqlstate', run_sqlstate, 'error', run_error, 'started_at', coalesce(started, finished)
            )
        );
    ELSE
        PERFORM guard.resolve_job_alert('job_failed', record_job_run.job_name);
    END IF;
    RETURN elapsed_ms;
END;
$$;
