-- Rollback of 0062_detection_runs: the detection history, its retention setting and the retention
-- job's description. guard.detection_passes (a definition) reads the table, so it goes first; the
-- definitions of the level rolled back to come with it (docs/dba.md, "Rolling back").
UPDATE guard.jobs
SET
    description = 'Delete resolved alerts, breaker events, validation metrics and job runs past '
    || 'retention.'
WHERE name = 'retention';

DELETE FROM guard.settings
WHERE key = 'retention_detection_runs_days';

DROP VIEW IF EXISTS guard.detection_passes;

DROP TABLE guard.detection_runs;
