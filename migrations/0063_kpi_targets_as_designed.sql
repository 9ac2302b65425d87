-- 0063_kpi_targets_as_designed: three KPI targets as the original design documents state them
-- (breaker recovery 60 s, review queue 10 items, false positives 1 %), where a database still has
-- the earlier defaults (120 s, 50, 5 %): a value a DBA chose is left alone.
-- Locks: ROW EXCLUSIVE on guard.settings (three rows).
UPDATE guard.settings
SET value = '60'
WHERE key = 'target_breaker_recovery_seconds' AND value = '120';

UPDATE guard.settings
SET value = '10'
WHERE key = 'target_review_queue_max' AND value = '50';

UPDATE guard.settings
SET value = '1'
WHERE key = 'target_false_positive_rate_pct' AND value = '5';
