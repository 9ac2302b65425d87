-- Rollback of 0061_known_values: the check, its rule and the three settings (the check's alerts
-- go with it; the view is dropped with the definitions of the release rolled back to).
DELETE FROM guard.alerts
WHERE check_id = 'unknown_value';
DELETE FROM guard.checks
WHERE id = 'unknown_value';
DELETE FROM guard.rules
WHERE id = 'I8_known_values';
DELETE FROM guard.settings
WHERE key IN ('known_appointment_statuses', 'known_appointment_sources', 'known_session_outcomes');
