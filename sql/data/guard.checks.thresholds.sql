-- The rule and check of the thresholds a DBA sets on checks (guard.checks.warn_above,
-- error_above): guard.judge_check_threshold raises and resolves its alerts.
INSERT INTO guard.rules AS r (id, invariant, severity, description, remedy, likely_cause, action)
VALUES (
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

INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy) VALUES (
    'check_threshold', 'detection_thresholds', 'high',
    'A check''s offending rows in a detection pass are above its warn or error threshold.',
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
