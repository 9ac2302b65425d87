-- Rollback of 0102_detection_read_to: the column goes; the definitions of the release rolled back
-- to (guard.run_checks before it) read the rows since each check's previous pass at once, however
-- many, and probe every open alert at every pass.
-- Locks: ACCESS EXCLUSIVE on guard.detection_runs for an instant to drop the column (no rewrite).

-- squawk-ignore ban-drop-column
ALTER TABLE guard.detection_runs DROP COLUMN read_to;
