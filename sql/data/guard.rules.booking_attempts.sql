-- Detection of the booking journal: attempts whose outcome nobody knows.
INSERT INTO guard.rules (id, invariant, severity, description, remedy, stage, check_view) VALUES
(
    'booking_outcome_unknown', 'I7', 'critical',
    'A booking attempt called the calendar and never finished (past booking_attempt_timeout_seconds): '
    || 'the calendar may hold a booking the database does not know.',
    'review', 'observe', 'check_booking_outcome_unknown'
);
