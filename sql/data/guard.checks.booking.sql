-- Raised by the booking path (guard.rollback_booking), not by a detection view.
INSERT INTO guard.checks (id, rule_id, severity, description, remedy) VALUES
(
    'booking_rolled_back', 'I7_booking_failures', 'high',
    'A booking failed (calendar, validation, or an open circuit) and was rolled back.',
    'review'
);
