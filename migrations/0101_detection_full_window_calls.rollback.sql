-- Rollback of 0101_detection_full_window_calls: the setting goes; the definitions of the release
-- rolled back to (guard.run_checks before it) read the whole window at every pass.
-- Locks: ROW EXCLUSIVE on guard.settings (one row).

DELETE FROM guard.settings
WHERE key = 'detection_full_window_calls';
