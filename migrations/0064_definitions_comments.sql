-- 0064_definitions_comments: guard.definitions also records the comments BI tools show
-- (sql/comments/: COMMENT ON every table, view and column the reporting role reads), a kind of
-- definition that runs last, like the grants, whenever anything was applied.
-- Locks: ACCESS EXCLUSIVE on guard.definitions (one row per file of sql/, read by guard db
-- only) for milliseconds: the new CHECK is a superset of the old one, every row passes it.
ALTER TABLE guard.definitions
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT definitions_kind_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT definitions_kind_check CHECK (
    kind IN ('function', 'view', 'trigger', 'policy', 'grants', 'schedule', 'comments')
);

COMMENT ON TABLE guard.definitions IS
'Definitions applied from sql/ (functions, views, triggers, policies, grants, comments) and their sha256.';
