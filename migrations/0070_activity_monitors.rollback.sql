-- Rollback of 0070_activity_monitors. Their alerts stay, as alerts of a removed check do (the
-- daily report names their rule `(unknown)`); the views go first, then the rows.
DROP VIEW IF EXISTS guard.check_calls_stopped;

DROP VIEW IF EXISTS guard.check_bookings_stopped;

DROP VIEW IF EXISTS guard.check_call_volume_drop;

DROP VIEW IF EXISTS guard.check_booking_volume_drop;

DROP FUNCTION IF EXISTS guard.activity_against_usual(text);

DELETE FROM guard.checks
WHERE rule_id = 'I9_expected_activity';

DELETE FROM guard.rules
WHERE id = 'I9_expected_activity';

DELETE FROM guard.settings
WHERE key IN ('monitor_window_minutes', 'monitor_min_expected', 'monitor_drop_ratio');
