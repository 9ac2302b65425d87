-- transactional: false
-- 0067a_failed_attempts_index: a booking that fails late (a retry of an older call, a booking
-- settled by recover_attempts) is found by when it failed, not when its call was created:
-- check recent_booking_failure reads failed attempts by finished_at. Built CONCURRENTLY (the
-- booking path writes on); a re-run after an interrupted build drops an INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.booking_attempts while it builds (reads and writes go
-- on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.booking_attempts_failed_at_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.booking_attempts_failed_at_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS booking_attempts_failed_at_idx
ON guard.booking_attempts (finished_at) WHERE state = 'failed';
