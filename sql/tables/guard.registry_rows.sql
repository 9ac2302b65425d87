-- The registry rows (guard.settings, guard.rules, guard.checks, guard.jobs) that a data file under
-- sql/data/ created rather than a migration: one row per (registry, key) with the file. A rollback
-- to a release whose data files do not define such a row deletes it (guard.schema.definitions), and
-- the rollback of 0086 deletes every one of them; rows a migration created go with that
-- migration's rollback, as they always did.

CREATE TABLE guard.registry_rows (
    registry text NOT NULL CHECK (registry IN ('settings', 'rules', 'checks', 'jobs')),
    key text NOT NULL,
    path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (registry, key)
);

COMMENT ON TABLE guard.registry_rows IS
'Registry rows a data file under sql/data/ created (not a migration): a rollback below the file deletes them.';
