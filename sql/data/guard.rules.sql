-- The invariant catalogue (docs/invariants.md). stage: observe (detected), correct (corrected on write,
-- constraints not yet validated on old rows), enforce (constraints validated).
INSERT INTO guard.rules AS r (
    id, invariant, severity, description, remedy, mode, stage, constraint_names
) VALUES
(
    'I1_call_direction', 'I1', 'medium',
    'Every call has direction inbound or outbound; a missing one becomes inbound.',
    'auto_fix', 'correct', 'correct', '{guard_calls_direction_check}'
),
(
    'I2_customer_link', 'I2', 'medium',
    'customer_id is set exactly when the link is complete (status linked, linked_at, method, '
    || 'confidence 0-100); otherwise the call is unlinked or anonymous.',
    'auto_fix', 'correct', 'correct',
    '{guard_calls_customer_link_check}'
),
(
    'I3_appointment_flags', 'I3', 'high',
    'appointment_made and the appointment link agree with the active appointments of the call.',
    'auto_fix', 'correct', 'correct', '{}'
),
(
    'I4_booked_outcome', 'I4', 'critical',
    'An active appointment means session_outcome appointment_booked; a booked outcome without '
    || 'an appointment is allowed only for the grace period.',
    'review', 'correct', 'correct', '{}'
),
(
    'I5_tenant_link', 'I5', 'critical',
    'An appointment, its call and their customer belong to the same company.',
    'report', 'reject', 'correct',
    '{guard_appointments_call_company_fkey,guard_appointments_company_required,'
    'guard_calls_customer_company_fkey,guard_appointments_customer_company_fkey}'
),
(
    'I6_voice_appointment_call', 'I6', 'high',
    'A voice-agent appointment (source retell_webhook) has a call.',
    'review', 'correct', 'observe', '{}'
),
(
    'I7_booking_failures', 'I7', 'high',
    'Booking failures are visible; a spike against the usual rate raises an alert.',
    'report', 'correct', 'observe', '{}'
),
(
    'I8_known_values', 'I8', 'high',
    'Appointment status and source and the call''s session_outcome are values of the known sets '
    || '(settings known_*): Booking Guard decides from them.',
    'report', 'correct', 'observe', '{}'
),
(
    'I10_double_booking', 'I10', 'high',
    'A call has at most one active appointment, and a customer is not booked twice at '
    || 'overlapping times.',
    'review', 'correct', 'observe', '{}'
)
ON CONFLICT (id) DO UPDATE SET
    invariant = excluded.invariant,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy,
    constraint_names = excluded.constraint_names
WHERE (
    r.invariant, r.severity, r.description, r.remedy, r.constraint_names
) IS DISTINCT FROM (
    excluded.invariant, excluded.severity, excluded.description, excluded.remedy, excluded.constraint_names
);
