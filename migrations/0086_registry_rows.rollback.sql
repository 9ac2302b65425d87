-- Rollback of 0086_registry_rows: below it no data file creates rows, so the rows the data files
-- created go (checks before the rules they belong to), and the data files are no longer a kind
-- of definition. Alerts of a removed check stay, as they do for any removed check.
DELETE FROM guard.checks AS k
USING guard.registry_rows AS c
WHERE c.registry = 'checks' AND k.id = c.key;

DELETE FROM guard.rules AS r
USING guard.registry_rows AS c
WHERE c.registry = 'rules' AND r.id = c.key;

DELETE FROM guard.jobs AS j
USING guard.registry_rows AS c
WHERE c.registry = 'jobs' AND j.name = c.key;

DELETE FROM guard.settings AS s
USING guard.registry_rows AS c
WHERE c.registry = 'settings' AND s.key = c.key;

DROP TABLE guard.registry_rows;

DELETE FROM guard.definitions
WHERE kind = 'rows';

ALTER TABLE guard.definitions
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT definitions_kind_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT definitions_kind_check CHECK (
    kind IN ('function', 'view', 'trigger', 'policy', 'grants', 'schedule', 'comments')
);

COMMENT ON TABLE guard.definitions IS
'Definitions applied from sql/ (functions, views, triggers, policies, grants, comments) and their sha256.';
