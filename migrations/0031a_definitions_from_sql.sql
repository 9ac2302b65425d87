-- 0031a_definitions_from_sql: from here on, functions, views, triggers, policies and grants are
-- applied from sql/ by `guard db apply` whenever their text changes (guard.db.definitions), and
-- migrations hold tables, columns, constraints, indexes and data. guard.definitions records
-- what was applied. Every migration before this one carries the definitions it needs itself.
-- Locks: none on existing tables (a new table).

CREATE TABLE guard.definitions (
    path text PRIMARY KEY,
    kind text NOT NULL CHECK (
        kind IN ('function', 'view', 'trigger', 'policy', 'grants', 'schedule')
    ),
    position integer NOT NULL CHECK (position >= 0),
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);

COMMENT ON TABLE guard.definitions IS
'Definitions applied from sql/ (functions, views, triggers, policies, grants) and their sha256.';
