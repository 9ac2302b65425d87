-- Rollback of 0062_detection_runs: the detection history and the retention job's description.
-- guard.detection_passes (a definition) reads the table, so it goes first; the definitions of the
-- level rolled back to come with it (docs/dba.md, "Rolling back").
UPDATE guard.jobs
SET
    description = 'Delete resolved alerts, breaker events, validation metrics and job runs past '
    || 'retention.'
WHERE name = 'retention';

DROP VIEW IF EXISTS guard.detection_passes;

DROP TABLE guard.detection_runs;
