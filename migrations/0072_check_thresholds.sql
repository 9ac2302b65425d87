-- 0072_check_thresholds: warn and error thresholds per check (Soda's warn/fail): a windowed
-- detection pass judges each check that has them by its count of offending rows, or their rate
-- per 100 calls of the window, records the outcome (guard.detection_runs.outcome) and keeps one
-- alert of check check_threshold (rule detection_thresholds) per judged check while it is not
-- pass. Checks without thresholds behave as before. The judging is a definition (sql/).
-- Locks: ACCESS EXCLUSIVE on guard.checks and guard.detection_runs for milliseconds (columns
-- without a volatile default; the CHECKs validate a few dozen rows of guard.checks, and every
-- row of detection_runs has outcome NULL); ROW EXCLUSIVE on guard.rules and guard.checks (rows).
-- guard.checks holds a few dozen rows: validating the CHECK at once scans them in microseconds.
ALTER TABLE guard.checks
ADD COLUMN warn_above numeric CHECK (warn_above >= 0),
ADD COLUMN error_above numeric CHECK (error_above >= 0),
ADD COLUMN threshold_unit text NOT NULL DEFAULT 'count' CHECK (threshold_unit IN ('count', 'rate_pct')),
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT checks_thresholds_ordered CHECK (warn_above <= error_above);

ALTER TABLE guard.detection_runs
ADD COLUMN outcome text CHECK (outcome IN ('pass', 'warn', 'fail'));

INSERT INTO guard.rules (id, invariant, severity, description, remedy, likely_cause, action)
VALUES (
    'detection_thresholds', NULL, 'high',
    'A check with warn or error thresholds stays at or below them in every detection pass.',
    'report',
    'More rows than the DBA''s threshold broke one check in a pass: a burst of one kind of bad '
    || 'data.',
    'Read the check''s own alerts (guard alerts list --check ...) and its rule''s action.'
);

INSERT INTO guard.checks (id, rule_id, severity, description, remedy) VALUES (
    'check_threshold', 'detection_thresholds', 'high',
    'A check''s offending rows in a detection pass are above its warn or error threshold.',
    'report'
);
