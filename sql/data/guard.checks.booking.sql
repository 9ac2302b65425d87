-- Raised by the booking path (guard.rollback_booking), not by a detection view.
INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy) VALUES
(
    'booking_rolled_back', 'I7_booking_failures', 'high',
    'A booking failed (calendar, validation, or an open circuit) and was rolled back.',
    'review'
)
ON CONFLICT (id) DO UPDATE SET
    rule_id = excluded.rule_id,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy
WHERE (
    k.rule_id, k.severity, k.description, k.remedy
) IS DISTINCT FROM (
    excluded.rule_id, excluded.severity, excluded.description, excluded.remedy
);
