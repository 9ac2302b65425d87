-- Settings of the booking journal.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'booking_attempt_timeout_seconds', '120', 'integer',
    'A booking attempt still calling the calendar after this long has an unknown outcome: '
    || 'reconcile queues it for review (booking_outcome_unknown).'
);
