-- The operational rule of detection itself: every check runs to its end, within its time
-- budget, in every pass and check_call. A check that raises (a view that fails on one row, a
-- view changed under its registration) or is cut by the statement's timeout is isolated from the
-- others (guard.run_detection) and raises check_failed; a DBA's own check that takes longer than
-- check_call_budget_ms in check_call raises check_over_budget and is left out of check_call for
-- check_call_over_budget_minutes (the detect job still runs it). Their alerts name the check
-- (entity_type check, no company).
-- And the rule and check of the thresholds a DBA sets on checks (guard.checks.warn_above,
-- error_above): guard.judge_check_threshold raises and resolves its alerts.
INSERT INTO guard.rules AS r (id, invariant, severity, description, remedy, likely_cause, action)
VALUES (
    'detection_health', NULL, 'high',
    'Every detection check runs to its end within its time budget, in every pass and check_call.',
    'report',
    'A check view (usually a DBA''s own) raises on some row, was changed, or is too slow for the '
    || 'detection pass or the application''s check_call.',
    'Read the alert''s error, fix the view, and register it again (guard.register_check).'
),
(
    'detection_thresholds', NULL, 'high',
    'A check with warn or error thresholds stays at or below them in every detection pass.',
    'report',
    'More rows than the DBA''s threshold broke one check in a pass: a burst of one kind of bad '
    || 'data.',
    'Read the check''s own alerts (guard alerts list --check ...) and its rule''s action.'
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

INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy) VALUES
(
    'check_failed', 'detection_health', 'high',
    'A detection check raised an error or was cut by the statement timeout; the other checks ran. '
    || 'Resolved when a detection pass runs it through.',
    'report'
),
(
    'check_over_budget', 'detection_health', 'medium',
    'An own check took longer than check_call_budget_ms in check_call and is left out of '
    || 'check_call for check_call_over_budget_minutes (the detect job still runs it).',
    'report'
),
(
    'check_threshold', 'detection_thresholds', 'high',
    'A check''s offending rows in a detection pass are above its warn or error threshold.',
    'report'
),
-- the checks of rule job_health (sql/data/guard.rules.jobs.sql)
(
    'job_failed', 'job_health', 'high',
    'A scheduled Booking Guard job failed; its work was rolled back. Resolved by its next success.',
    'report'
),
(
    'job_missed', 'job_health', 'high',
    'A scheduled Booking Guard job has not succeeded within twice its interval.',
    'report'
)
ON CONFLICT (id) DO UPDATE SET
    rule_id = excluded.rule_id,
    severity = excluded.severity,
    description = excluded.description,
    remedy = excluded.remedy
WHERE (
    k.rule_id, k.severity, k.description, k.remedy
) IS DISTINCT FROM (
    excluded.rule_id, excluded.severity, excluded.description, excluded.remedy
);
