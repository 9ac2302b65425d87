-- 0086_registry_rows: Booking Guard's own rows (settings, rules, checks, jobs) are applied from
-- sql/data/ with the definitions, as idempotent upserts that never overwrite what an operator
-- owns. guard.definitions records the data files (kind rows); guard.registry_rows records the
-- rows a data file created, not a migration, so that a rollback takes them away again.
-- Locks: ACCESS EXCLUSIVE on guard.definitions (one row per file of sql/, read by guard db
-- only) for milliseconds: the new CHECK is a superset of the old one, every row passes it.
ALTER TABLE guard.definitions
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT definitions_kind_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT definitions_kind_check CHECK (
    kind IN ('function', 'view', 'trigger', 'policy', 'grants', 'schedule', 'comments', 'rows')
);

COMMENT ON TABLE guard.definitions IS
'Definitions applied from sql/ (functions, views, triggers, policies, grants, comments, registry rows) and their sha256.';

CREATE TABLE guard.registry_rows (
    registry text NOT NULL CHECK (registry IN ('settings', 'rules', 'checks', 'jobs')),
    key text NOT NULL,
    path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (registry, key)
);

COMMENT ON TABLE guard.registry_rows IS
'Registry rows a data file under sql/data/ created (not a migration): a rollback below the file deletes them.';
