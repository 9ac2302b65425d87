-- The activity monitors (Soda's and Elementary's volume and freshness): rule I9 and its four
-- checks, each a view under sql/checks reading guard.activity_against_usual, and their
-- settings.
INSERT INTO guard.settings AS s (key, value, value_type, description) VALUES
(
    'monitor_window_minutes', '60', 'integer',
    'The activity monitors compare the calls and appointments of this recent window with the '
    || 'same window 1 to 4 weeks earlier.'
),
(
    'monitor_min_expected', '5', 'number',
    'A company usually getting fewer calls (or appointments) than this in the window is in a '
    || 'quiet hour: the activity monitors never alert then.'
),
(
    'monitor_drop_ratio', '0.3', 'number',
    'Fewer calls (or appointments) than this fraction of the usual number is a volume drop.'
)
ON CONFLICT (key) DO UPDATE SET
    description = excluded.description
WHERE s.description IS DISTINCT FROM excluded.description;

INSERT INTO guard.rules AS r (id, invariant, severity, description, remedy, mode, stage, likely_cause, action)
VALUES (
    'I9_expected_activity', 'I9', 'critical',
    'Calls and appointments keep arriving at the company''s usual rate for the hour of the week; '
    || 'silence is not consistency.',
    'report', 'correct', 'observe',
    'The voice platform''s webhook, a phone number or the calendar stopped sending, or part of '
    || 'the traffic is lost on the way.',
    'Check the voice platform''s and the calendar''s webhooks and status pages, and the '
    || 'application''s logs for the company (docs/runbooks.md).'
)
ON CONFLICT (id) DO UPDATE SET
    invariant = excluded.invariant,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy,
    likely_cause = excluded.likely_cause,
    action = excluded.action
WHERE (
    r.invariant, r.severity, r.description, r.remedy, r.likely_cause, r.action
) IS DISTINCT FROM (
    excluded.invariant, excluded.severity, excluded.description, excluded.remedy, excluded.likely_cause, excluded.action
);

INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy, check_view) VALUES
(
    'calls_stopped', 'I9_expected_activity', 'critical',
    'No call arrived in the monitor window although the company usually gets calls in this hour.',
    'report', 'check_calls_stopped'
),
(
    'bookings_stopped', 'I9_expected_activity', 'high',
    'No appointment was recorded in the monitor window although the company usually books in '
    || 'this hour.',
    'report', 'check_bookings_stopped'
),
(
    'call_volume_drop', 'I9_expected_activity', 'high',
    'Far fewer calls than usual for this hour of the week.',
    'report', 'check_call_volume_drop'
),
(
    'booking_volume_drop', 'I9_expected_activity', 'high',
    'Far fewer appointments than usual for this hour of the week.',
    'report', 'check_booking_volume_drop'
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
