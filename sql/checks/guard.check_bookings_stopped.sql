-- I9, check bookings_stopped of rule I9_expected_activity: a company that usually records
-- appointments in this hour of the week has recorded none for monitor_window_minutes: the calendar
-- or its webhook stopped, or every booking fails.
-- Counted by guard.activity_against_usual('appointments'), which leaves out a company's quiet hours.
CREATE OR REPLACE VIEW guard.check_bookings_stopped WITH (security_invoker = TRUE) AS
SELECT * FROM guard.activity_check('bookings_stopped', 'appointments', stopped => TRUE);
