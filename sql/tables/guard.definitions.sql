-- The definitions applied from sql/ (guard.schema.definitions): one row per file of a function,
-- view, trigger, policy, the grants, pg_cron's schedule, the comments BI tools show or
-- Booking Guard's registry rows (sql/data/), with the sha256 of the text applied. `guard db
-- apply` runs a file again when its text no longer has this checksum or its object is missing, and
-- drops the object of a file that is no longer listed; source says whose definitions they
-- are: the checkout's sql/, or a release's (restored by `guard db rollback`).

CREATE TABLE guard.definitions (
    path text PRIMARY KEY,
    kind text NOT NULL CHECK (
        kind IN (
            'function', 'view', 'trigger', 'policy', 'grants', 'schedule', 'comments', 'rows'
        )
    ),
    position integer NOT NULL CHECK (position >= 0),
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);

COMMENT ON TABLE guard.definitions IS
'Definitions applied from sql/ (functions, views, triggers, policies, grants, comments, registry rows) and their sha256.';
