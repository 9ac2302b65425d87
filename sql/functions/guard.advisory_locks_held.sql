-- The advisory locks this session holds now, each as 'classid/objid/objsubid/mode': what a pass
-- notes before it reads its first own check, so that guard.release_advisory_locks_since can
-- release what those reads took. A transaction's advisory locks are listed too (they go with
-- it); a session's would outlive the pass. SECURITY INVOKER: pg_locks shows every role its own
-- backend's locks.
CREATE OR REPLACE FUNCTION guard.advisory_locks_held()
RETURNS text[]
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog
RETURN array(
    SELECT l.classid || '/' || l.objid || '/' || l.objsubid || '/' || l.mode
    FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
);
