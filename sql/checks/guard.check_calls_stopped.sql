-- I9, check calls_stopped of rule I9_expected_activity: a company that usually receives calls in
-- this hour of the week (at least monitor_min_expected in the window) has received none for
-- monitor_window_minutes: a dead webhook of the voice platform, a phone line or number that stopped
-- working.
-- Counted by guard.activity_against_usual('calls'), which leaves out a company's quiet hours.
CREATE OR REPLACE VIEW guard.check_calls_stopped WITH (security_invoker = TRUE) AS
SELECT * FROM guard.activity_check('calls_stopped', 'calls', stopped => TRUE);
