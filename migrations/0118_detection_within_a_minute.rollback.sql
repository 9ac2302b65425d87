-- Rollback of 0118_detection_within_a_minute. guard.kpis reads the column, so it goes first;
-- the definitions of the level rolled back to come with it (docs/dba.md, "Rolling back"). The
-- target goes back to 600 where it is still this migration's 60.
DROP VIEW IF EXISTS guard.kpis;

ALTER TABLE guard.alerts DROP COLUMN written_at;

UPDATE guard.settings
SET value = '600'
WHERE key = 'target_detection_latency_seconds' AND value = '60';
