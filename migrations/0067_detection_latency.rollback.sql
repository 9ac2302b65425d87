-- Rollback of 0067_detection_latency. guard.kpis and guard.alerts_report (definitions) read the
-- column, so they go first; the definitions of the level rolled back to come with it
-- (docs/dba.md, "Rolling back").
DROP VIEW IF EXISTS guard.kpis;

DROP VIEW IF EXISTS guard.alerts_report;

ALTER TABLE guard.alerts DROP COLUMN observed_at;
