-- Release every advisory lock this session holds now that it did not hold when `held_before`
-- was taken (guard.advisory_locks_held): what own check views read since then took. Their reads
-- run in a subtransaction that is rolled back (guard.read_own_check), which takes back a
-- transaction's advisory locks but not a session's: one of those would stay with the
-- application's pooled connection. Returns how many locks were released.
CREATE OR REPLACE FUNCTION guard.release_advisory_locks_since(held_before text[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog
AS $$
DECLARE
    lock_left record;
    released integer := 0;
    unlocked boolean;
BEGIN
    FOR lock_left IN
        SELECT l.classid, l.objid, l.objsubid, l.mode
        FROM pg_locks AS l
        WHERE
            l.locktype = 'advisory' AND l.pid = pg_backend_pid()
            AND l.classid || '/' || l.objid || '/' || l.objsubid || '/' || l.mode
            <> ALL(coalesce(held_before, '{}'))
    LOOP
        -- one bigint key (objsubid 1) or two integer keys (2); a session lock is held as often
        -- as it was taken: released until pg_locks shows it no more (one call too many would
        -- warn "you don't own a lock")
        LOOP
            unlocked := CASE
                WHEN lock_left.objsubid = 1 AND lock_left.mode = 'ShareLock'
                    THEN pg_advisory_unlock_shared((lock_left.classid::bigint << 32) | lock_left.objid::bigint)
                WHEN lock_left.objsubid = 1
                    THEN pg_advisory_unlock((lock_left.classid::bigint << 32) | lock_left.objid::bigint)
                WHEN lock_left.mode = 'ShareLock'
                    THEN pg_advisory_unlock_shared(lock_left.classid::integer, lock_left.objid::integer)
                ELSE pg_advisory_unlock(lock_left.classid::integer, lock_left.objid::integer)
            END;
            EXIT WHEN NOT unlocked OR NOT EXISTS (
                SELECT FROM pg_locks AS l
                WHERE
                    l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                    AND l.classid = lock_left.classid AND l.objid = lock_left.objid
                    AND l.objsubid = lock_left.objsubid AND l.mode = lock_left.mode
            );
        END LOOP;
        released := released + 1;
    END LOOP;
    RETURN released;
END;
$$;
