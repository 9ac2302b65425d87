-- Rollback of 0076_detection_health. Alerts of checks check_failed and check_over_budget stay,
-- as alerts of a removed check do; the definitions of the level rolled back to come with it
-- (docs/dba.md, "Rolling back").
DELETE FROM guard.checks
WHERE id IN ('check_failed', 'check_over_budget');

DELETE FROM guard.rules
WHERE id = 'detection_health';

DELETE FROM guard.settings
WHERE key IN ('check_call_budget_ms', 'check_call_over_budget_minutes');
