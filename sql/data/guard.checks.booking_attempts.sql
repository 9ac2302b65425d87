-- Detection of the booking journal: attempts whose outcome nobody knows.
INSERT INTO guard.checks (id, rule_id, severity, description, remedy, check_view) VALUES
(
    'booking_outcome_unknown', 'I7_booking_failures', 'critical',
    'A booking attempt called the calendar and never finished (past booking_attempt_timeout_seconds): '
    || 'the calendar may hold a booking the database does not know.',
    'review', 'check_booking_outcome_unknown'
);
