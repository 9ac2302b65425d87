-- Settings of the booking journal.
INSERT INTO guard.settings AS s (key, value, value_type, description) VALUES
(
    'booking_attempt_timeout_seconds', '120', 'integer',
    'A booking attempt still calling the calendar after this long has an unknown outcome: '
    || 'reconcile queues it for review (booking_outcome_unknown).'
)
ON CONFLICT (key) DO UPDATE SET
    description = excluded.description
WHERE s.description IS DISTINCT FROM excluded.description;
