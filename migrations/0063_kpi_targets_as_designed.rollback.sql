-- Rollback of 0063_kpi_targets_as_designed: the earlier defaults, where the targets are still the
-- design's (a value a DBA chose since is left alone).
UPDATE guard.settings
SET value = '120'
WHERE key = 'target_breaker_recovery_seconds' AND value = '60';

UPDATE guard.settings
SET value = '50'
WHERE key = 'target_review_queue_max' AND value = '10';

UPDATE guard.settings
SET value = '5'
WHERE key = 'target_false_positive_rate_pct' AND value = '1';
