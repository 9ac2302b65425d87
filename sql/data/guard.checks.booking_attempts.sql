-- Detection of the booking journal: attempts whose outcome nobody knows.
INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy, check_view) VALUES
(
    'booking_outcome_unknown', 'I7_booking_failures', 'critical',
    'A booking attempt called the calendar and never finished (past booking_attempt_timeout_seconds): '
    || 'the calendar may hold a booking the database does not know.',
    'review', 'check_booking_outcome_unknown'
)
ON CONFLICT (id) DO UPDATE SET
    rule_id = excluded.rule_id,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy,
    check_view = excluded.check_view
WHERE (
    k.rule_id, k.severity, k.description, k.remedy, k.check_view
) IS DISTINCT FROM (
    excluded.rule_id, excluded.severity, excluded.description, excluded.remedy, excluded.check_view
);
