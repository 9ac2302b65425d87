-- 0062_detection_runs: the history of detection, guard.detection_runs (one row per check per
-- windowed pass, written by guard.run_detection; BI reads it through guard.detection_passes,
-- both definitions applied from sql/), and the retention job's new description. Its retention
-- setting is a row of sql/data/.
-- Locks: none on existing tables (a new table); ROW EXCLUSIVE on guard.jobs (one row).

-- The history of detection: one row per check per windowed pass (the detect job, `guard check`;
-- not the batches of `guard check --all`), written by guard.run_detection in the pass's own transaction, so a pass
-- that failed or timed out leaves no row (its job run says why). check_call's one-call passes are
-- not recorded: they run on the application's path, once per booking. BI charts it through
-- guard.detection_passes; retention deletes rows past retention_detection_runs_days.
CREATE TABLE guard.detection_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pass_started_at timestamptz NOT NULL,
    window_start timestamptz,
    check_id text NOT NULL,
    rule_id text NOT NULL,
    duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
    offending integer NOT NULL CHECK (offending >= 0),
    opened integer NOT NULL CHECK (opened >= 0),
    repeated integer NOT NULL CHECK (repeated >= 0),
    resolved integer NOT NULL CHECK (resolved >= 0),
    run_by text NOT NULL DEFAULT current_user
);

CREATE INDEX detection_runs_pass_started_at_idx ON guard.detection_runs (pass_started_at);

UPDATE guard.jobs
SET
    description = 'Delete resolved alerts, breaker events, validation metrics, detection runs and '
    || 'job runs past retention.'
WHERE name = 'retention';
