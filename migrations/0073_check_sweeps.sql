-- 0073_check_sweeps: the sweep job. A detection pass reads the rows created in its window and
-- the rows of open alerts, so a row an application updates long after it was written (an
-- appointment cancelled as 'canceled' days after it was booked) was never found. Checks marked
-- sweep (unknown_value) are read whole once an hour by the new job `sweep`
-- (guard.sweep_checks, a definition); pg_cron gets it when the definitions step schedules the
-- jobs again.
-- Locks: ACCESS EXCLUSIVE on guard.checks for milliseconds (a column with a constant default
-- is added without a rewrite); ROW EXCLUSIVE on guard.checks and guard.jobs (rows).
ALTER TABLE guard.checks
ADD COLUMN sweep boolean NOT NULL DEFAULT FALSE;

UPDATE guard.checks SET sweep = TRUE
WHERE id = 'unknown_value';

INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description) VALUES (
    'sweep', '27 * * * *', 3600, 'SELECT count(*) FROM guard.sweep_checks()',
    'Read the whole view of every check marked sweep (rows an update made bad after the window).'
);
