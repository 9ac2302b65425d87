-- Booking Guard's scheduled jobs: what runs, when (cron expression, UTC) and how often the
-- external runner and the missed-run check expect it (interval_seconds). pg_cron schedules the
-- enabled ones (guard.schedule_jobs); `guard jobs run` runs the same rows from outside.
CREATE TABLE guard.jobs (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    schedule text NOT NULL,
    interval_seconds integer NOT NULL CHECK (interval_seconds >= 60),
    command text NOT NULL,
    description text NOT NULL,
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now()
);
