-- I9, check call_volume_drop of rule I9_expected_activity: a company receiving far fewer calls than
-- usual for this hour of the week (fewer than monitor_drop_ratio times the usual number): part of
-- the traffic lost on the way.
-- Counted by guard.activity_against_usual('calls'), which leaves out a company's quiet hours.
CREATE OR REPLACE VIEW guard.check_call_volume_drop WITH (security_invoker = TRUE) AS
SELECT * FROM guard.activity_check('call_volume_drop', 'calls', stopped => FALSE);
