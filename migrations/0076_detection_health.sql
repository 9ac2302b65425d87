-- 0076_detection_health: each detection check runs isolated, and a DBA's own checks within a
-- time budget in check_call (docs/dba.md, "Your own checks"). Rule detection_health with its
-- checks check_failed (a check raised, or the statement's timeout cut it; the other checks ran)
-- and check_over_budget (an own check too slow for check_call, left out of it for a while),
-- and the two settings of that budget. The isolation, the budget and the refusal of views that
-- would bypass row-level security are definitions (sql/).
-- Locks: ROW EXCLUSIVE on guard.settings, guard.rules and guard.checks (a few rows).
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'check_call_budget_ms', '200', 'integer',
    'check_call starts a DBA''s own check only within this long of its start; one that alone '
    || 'takes longer is left out of check_call for check_call_over_budget_minutes.'
),
(
    'check_call_over_budget_minutes', '60', 'integer',
    'An own check that took longer than check_call_budget_ms is left out of check_call this long, '
    || 'then tried again.'
);

INSERT INTO guard.rules (id, invariant, severity, description, remedy, likely_cause, action)
VALUES (
    'detection_health', NULL, 'high',
    'Every detection check runs to its end within its time budget, in every pass and check_call.',
    'report',
    'A check view (usually a DBA''s own) raises on some row, was changed, or is too slow for the '
    || 'detection pass or the application''s check_call.',
    'Read the alert''s error, fix the view, and register it again (guard.register_check).'
);

INSERT INTO guard.checks (id, rule_id, severity, description, remedy) VALUES
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
);
