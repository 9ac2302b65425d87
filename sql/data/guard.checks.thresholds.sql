-- The rule and check of the thresholds a DBA sets on checks (guard.checks.warn_above,
-- error_above): guard.judge_check_threshold raises and resolves its alerts.
INSERT INTO guard.rules (id, invariant, severity, description, remedy, likely_cause, action)
VALUES (
    'detection_thresholds', NULL, 'high',
    'A check with warn or error thresholds stays at or below them in every detection pass.',
    'report',
    'More rows than the DBA''s threshold broke one check in a pass: a burst of one kind of bad '
    || 'data.',
    'Read the check''s own alerts (guard alerts list --check ...) and its rule''s action.'
);

INSERT INTO guard.checks (id, rule_id, severity, description, remedy) VALUES (
    'check_threshold', 'detection_thresholds', 'high',
    'A check''s offending rows in a detection pass are above its warn or error threshold.',
    'report'
);
