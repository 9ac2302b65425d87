-- The detection rules: each is one view under sql/detection returning the offending rows.
INSERT INTO guard.rules (id, invariant, severity, description, remedy, stage, check_view) VALUES
(
    'flags_contradict_appointments', 'I3', 'high',
    'The call has an active appointment but its flags do not say booked.',
    'auto_fix', 'observe', 'check_flags_contradict_appointments'
),
(
    'booked_without_appointment', 'I4', 'critical',
    'The call claims a booking but no active appointment exists after the grace period.',
    'review', 'observe', 'check_booked_without_appointment'
),
(
    'call_without_direction', 'I1', 'medium',
    'The call has no valid direction.',
    'auto_fix', 'observe', 'check_call_without_direction'
),
(
    'orphaned_voice_appointment', 'I6', 'high',
    'A voice-agent appointment is linked to no call.',
    'review', 'observe', 'check_orphaned_voice_appointment'
),
(
    'recent_booking_failure', 'I7', 'high',
    'A booking failed within the failure window.',
    'report', 'observe', 'check_recent_booking_failure'
),
(
    'cross_tenant_link', 'I5', 'critical',
    'An appointment is linked to a call of another company.',
    'review', 'observe', 'check_cross_tenant_link'
),
(
    'booking_failure_anomaly', 'I7', 'critical',
    'The booking-failure rate is far above the usual rate for this hour of the week.',
    'report', 'observe', 'check_booking_failure_anomaly'
);
