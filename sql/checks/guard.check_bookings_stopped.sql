-- I9, check bookings_stopped of rule I9_expected_activity: a company that usually records
-- appointments in this hour of the week has recorded none for monitor_window_minutes: the calendar
-- or its webhook stopped, or every booking fails.
-- Counted by guard.activity_against_usual('appointments'), which leaves out a company's quiet hours.
-- Severity and rule are the check's row in guard.checks, read here, so what an alert says is
-- what the registry says.
-- observed_at is the pass that saw it (silence has no row to date it by), so its detection
-- latency reads 0.
CREATE OR REPLACE VIEW guard.check_bookings_stopped WITH (security_invoker = TRUE) AS
SELECT
    k.id AS check_id,
    u.company_id,
    'company'::text AS entity_type,
    u.company_id AS entity_id,
    NULL::bigint AS call_id,
    k.severity,
    now() AS observed_at,
    jsonb_build_object(
        'recent', u.recent,
        'usual', u.usual,
        'last_at', u.last_at,
        'window_minutes', guard.setting('monitor_window_minutes')::integer
    ) AS detail,
    k.rule_id
FROM guard.activity_against_usual('appointments') AS u
INNER JOIN guard.checks AS k ON k.id = 'bookings_stopped'
WHERE u.recent = 0;
