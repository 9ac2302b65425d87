-- Heartbeats: one row per finished run of a job (succeeded or failed), written by guard.run_job
-- even when the job's own work rolled back. The newest row per job is its status; retention
-- keeps the newest run and the newest success of every job.
CREATE TABLE guard.job_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    error text,
    sqlstate text,
    duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
    runner text NOT NULL DEFAULT '',
    CONSTRAINT job_runs_failure_has_error CHECK ((status = 'failed') = (error IS NOT NULL))
);

CREATE INDEX job_runs_job_started_idx ON guard.job_runs (job_name, started_at);
