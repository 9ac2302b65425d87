-- The detection checks: each is one view under sql/checks returning the offending rows.
-- sweep is the first value only (the operator owns it): an update of an old row can write an
-- unknown value (a cancellation spelt 'canceled' days after the booking), which the detection
-- window, keyed on when the row was created, never sees; the hourly sweep job reads that check's
-- view whole.
INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy, check_view, sweep) VALUES
(
    'flags_contradict_appointments', 'I3_appointment_flags', 'high',
    'The call has an active appointment but its flags do not say booked.',
    'auto_fix', 'check_flags_contradict_appointments', FALSE
),
(
    'booked_without_appointment', 'I4_booked_outcome', 'critical',
    'The call claims a booking but no active appointment exists after the grace period.',
    'review', 'check_booked_without_appointment', FALSE
),
(
    'call_without_direction', 'I1_call_direction', 'medium',
    'The call has no valid direction.',
    'auto_fix', 'check_call_without_direction', FALSE
),
(
    'orphaned_voice_appointment', 'I6_voice_appointment_call', 'high',
    'A voice-agent appointment is linked to no call.',
    'review', 'check_orphaned_voice_appointment', FALSE
),
(
    'recent_booking_failure', 'I7_booking_failures', 'high',
    'A booking failed within the failure window.',
    'report', 'check_recent_booking_failure', FALSE
),
(
    'double_booked_call', 'I10_double_booking', 'high',
    'The call has more than one active appointment: it was booked twice.',
    'review', 'check_double_booked_call', FALSE
),
(
    'customer_double_booked', 'I10_double_booking', 'high',
    'The customer has two active appointments at overlapping times.',
    'review', 'check_customer_double_booked', FALSE
),
(
    'cross_tenant_link', 'I5_tenant_link', 'critical',
    'An appointment is linked to a call or a customer of another company, or a call to '
    || 'another company''s customer.',
    'review', 'check_cross_tenant_link', FALSE
),
(
    'booking_failure_anomaly', 'I7_booking_failures', 'critical',
    'The booking-failure rate is far above the usual rate for this hour of the week.',
    'report', 'check_booking_failure_anomaly', FALSE
),
(
    'unknown_value', 'I8_known_values', 'high',
    'An appointment status or source, or a call outcome, is not in its known set.',
    'report', 'check_unknown_value', TRUE
),
(
    'booking_outcome_unknown', 'I7_booking_failures', 'critical',
    'A booking attempt called the calendar and never finished (past booking_attempt_timeout_seconds): '
    || 'the calendar may hold a booking the database does not know.',
    'review', 'check_booking_outcome_unknown', FALSE
),
-- Raised by code, not by a view: by the commit-time check of I3 (guard.refresh_call_flags), one
-- alert per company while it keeps correcting contradicting writes (the application writes flags
-- it should not); by the booking path (guard.rollback_booking).
(
    'flags_corrected_on_write', 'I3_appointment_flags', 'medium',
    'Booking flags written against the appointments were corrected at commit.',
    'auto_fix', NULL, FALSE
),
(
    'booking_rolled_back', 'I7_booking_failures', 'high',
    'A booking failed (calendar, validation, or an open circuit) and was rolled back.',
    'review', NULL, FALSE
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
