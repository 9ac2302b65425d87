-- I9, check calls_stopped of rule I9_expected_activity: a company that usually receives calls in
-- this hour of the week (at least monitor_min_expected in the window) has received none for
-- monitor_window_minutes: a dead webhook of the voice platform, a phone line or number that stopped
-- working.
-- Counted by guard.activity_against_usual('calls'), which leaves out a company's quiet hours.
-- observed_at is the pass that saw it (silence has no row to date it by), so its detection
-- latency reads 0.
CREATE OR REPLACE VIEW guard.check_calls_stopped WITH (security_invoker = TRUE) AS
SELECT
    'calls_stopped'::text AS check_id,
    u.company_id,
    'company'::text AS entity_type,
    u.company_id AS entity_id,
    NULL::bigint AS call_id,
    'critical'::text AS severity,
    now() AS observed_at,
    jsonb_build_object(
        'recent', u.recent,
        'usual', u.usual,
        'last_at', u.last_at,
        'window_minutes', guard.setting('monitor_window_minutes')::integer
    ) AS detail,
    'I9_expected_activity'::text AS rule_id
FROM guard.activity_against_usual('calls') AS u
WHERE u.recent = 0;
