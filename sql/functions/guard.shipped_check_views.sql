-- The detection views Booking Guard ships, one per file under sql/checks/ (a test keeps the
-- two lists equal): how detection tells its own checks from a DBA's, which guard.run_checks runs
-- after them and, in check_call, within check_call_budget_ms. LANGUAGE sql, IMMUTABLE, a
-- constant, no SET clause: the planner inlines it, so `check_view = ANY (...)` costs a few byte
-- comparisons per check. Found by a join with guard.definitions instead, check_call cost 7 %
-- more instructions (bench/own_checks.py).
CREATE OR REPLACE FUNCTION guard.shipped_check_views()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN ARRAY[
    'check_booked_without_appointment',
    'check_booking_failure_anomaly',
    'check_booking_outcome_unknown',
    'check_booking_volume_drop',
    'check_bookings_stopped',
    'check_call_volume_drop',
    'check_call_without_direction',
    'check_calls_stopped',
    'check_cross_tenant_link',
    'check_customer_double_booked',
    'check_double_booked_call',
    'check_flags_contradict_appointments',
    'check_orphaned_voice_appointment',
    'check_recent_booking_failure',
    'check_unknown_value'
];
