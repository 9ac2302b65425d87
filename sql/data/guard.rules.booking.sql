-- Alerts raised by the booking path (not by a detection view).
INSERT INTO guard.rules (id, invariant, severity, description, remedy, stage) VALUES
(
    'booking_rolled_back', 'I7', 'high',
    'A booking failed (calendar, validation, or an open circuit) and was rolled back.',
    'review', 'observe'
);
