-- 0073_check_sweeps: the sweep job. A detection pass reads the rows created in its window and
-- the rows of open alerts, so a row an application updates long after it was written (an
-- appointment cancelled as 'canceled' days after it was booked) was never found. Checks marked
-- sweep (unknown_value) are read whole once an hour by the job `sweep` (guard.sweep_checks, a
-- definition); the job and the checks' sweep values are rows of sql/data/.
-- Locks: ACCESS EXCLUSIVE on guard.checks for milliseconds (a column with a constant default
-- is added without a rewrite).
ALTER TABLE guard.checks
ADD COLUMN sweep boolean NOT NULL DEFAULT FALSE;
