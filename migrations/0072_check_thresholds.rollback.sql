-- Rollback of 0072_check_thresholds. guard.detection_passes (a definition) reads
-- guard.detection_runs, so it goes first; the definitions of the level rolled back to come with
-- it (docs/dba.md, "Rolling back").
DROP VIEW IF EXISTS guard.detection_passes;

ALTER TABLE guard.detection_runs
DROP COLUMN outcome;

ALTER TABLE guard.checks
DROP CONSTRAINT checks_thresholds_ordered,
DROP COLUMN warn_above,
DROP COLUMN error_above,
DROP COLUMN threshold_unit;
