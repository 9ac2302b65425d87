-- Rollback of 0102_detection_read_to: the setting and the column go; the definitions of the
-- release rolled back to (guard.run_checks before it) read the rows since each check's previous
-- pass at once, however many, and probe every open alert at every pass.
-- Locks: ROW EXCLUSIVE on guard.settings (two rows); ACCESS EXCLUSIVE on guard.detection_runs for
-- an instant to drop the column (no rewrite).

DELETE FROM guard.settings
WHERE key IN ('detection_slice_calls', 'detection_probe_every_alerts');

-- squawk-ignore ban-drop-column
ALTER TABLE guard.detection_runs DROP COLUMN read_to;
