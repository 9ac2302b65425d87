-- Rollback of 0035_detection_at_volume: its two settings go.

DELETE FROM guard.settings
WHERE key IN ('detection_statement_timeout_ms', 'check_call_lock_timeout_ms');
