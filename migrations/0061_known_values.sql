-- 0061_known_values: rule I8 and its check unknown_value (dbt's accepted_values): the known
-- appointment statuses and sources and call outcomes become settings, and a value outside them
-- is detected (the view is a definition, applied from sql/detection/). The lists are the
-- values the original application wrote; a DBA sets them to the application's own (docs/dba.md).
-- Locks: ROW EXCLUSIVE on guard.settings, guard.rules and guard.checks (a few rows).
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'known_appointment_statuses', '"scheduled,confirmed,completed,no_show,cancelled"', 'text',
    'The appointment statuses the application writes (comma-separated); any other is detected.'
),
(
    'known_appointment_sources', '"retell_webhook,calcom_webhook,manual,import"', 'text',
    'The appointment sources the application writes (comma-separated); any other is detected.'
),
(
    'known_session_outcomes',
    to_jsonb(
        'appointment_booked,appointment_cancelled,creation_failed,no_booking,no_availability,'
        || 'information_only,caller_hung_up,callback'
    ),
    'text',
    'The call outcomes the application writes (comma-separated); any other is detected.'
);

INSERT INTO guard.rules (
    id, invariant, severity, description, remedy, mode, stage, constraint_names
) VALUES (
    'I8_known_values', 'I8', 'high',
    'Appointment status and source and the call''s session_outcome are values of the known sets '
    || '(settings known_*): Booking Guard decides from them.',
    'report', 'correct', 'observe', '{}'
);

INSERT INTO guard.checks (id, rule_id, severity, description, remedy, check_view) VALUES (
    'unknown_value', 'I8_known_values', 'high',
    'An appointment status or source, or a call outcome, is not in its known set.',
    'report', 'check_unknown_value'
);
