-- 0072_check_thresholds: warn and error thresholds per check (Soda's warn/fail): a windowed
-- detection pass judges each check that has them by its count of offending rows, or their rate
-- per 100 calls of the window, records the outcome (guard.detection_runs.outcome) and keeps one
-- alert of check check_threshold (rule detection_thresholds) per judged check while it is not
-- pass. Checks without thresholds behave as before. The judging is a definition (sql/), the rule
-- and its check rows of sql/data/.
-- Locks: ACCESS EXCLUSIVE on guard.checks and guard.detection_runs for milliseconds (columns
-- without a volatile default; the CHECKs validate a few dozen rows of guard.checks, and every
-- row of detection_runs has outcome NULL).
-- guard.checks holds a few dozen rows: validating the CHECK at once scans them in microseconds.
ALTER TABLE guard.checks
ADD COLUMN warn_above numeric CHECK (warn_above >= 0),
ADD COLUMN error_above numeric CHECK (error_above >= 0),
ADD COLUMN threshold_unit text NOT NULL DEFAULT 'count' CHECK (threshold_unit IN ('count', 'rate_pct')),
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT checks_thresholds_ordered CHECK (warn_above <= error_above);

ALTER TABLE guard.detection_runs
ADD COLUMN outcome text CHECK (outcome IN ('pass', 'warn', 'fail'));
