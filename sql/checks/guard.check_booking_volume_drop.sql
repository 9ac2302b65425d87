-- I9, check booking_volume_drop of rule I9_expected_activity: a company recording far fewer
-- appointments than usual for this hour of the week: bookings lost or failing.
-- Counted by guard.activity_against_usual('appointments'), which leaves out a company's quiet hours.
CREATE OR REPLACE VIEW guard.check_booking_volume_drop WITH (security_invoker = TRUE) AS
SELECT * FROM guard.activity_check('booking_volume_drop', 'appointments', stopped => FALSE);
