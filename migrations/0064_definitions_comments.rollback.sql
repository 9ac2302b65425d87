-- Rollback of 0064_definitions_comments: the comments are no longer a kind of definition; their
-- rows go (the comments themselves stay on the objects, harmless, until those are dropped).
DELETE FROM guard.definitions
WHERE kind = 'comments';

ALTER TABLE guard.definitions
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT definitions_kind_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT definitions_kind_check CHECK (
    kind IN ('function', 'view', 'trigger', 'policy', 'grants', 'schedule')
);

COMMENT ON TABLE guard.definitions IS
'Definitions applied from sql/ (functions, views, triggers, policies, grants) and their sha256.';
