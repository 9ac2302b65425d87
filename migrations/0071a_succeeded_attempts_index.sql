-- transactional: false
-- 0071a_succeeded_attempts_index: the booking counters of `guard metrics` count attempts settled
-- as booked or recovered after guard.metric_watermark by when they settled (finished_at), as
-- check recent_booking_failure reads failed ones on booking_attempts_failed_at_idx (0067a).
-- Built CONCURRENTLY (the booking path writes on); a re-run after an interrupted build drops an
-- INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.booking_attempts while it builds (reads and writes go
-- on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.booking_attempts_succeeded_at_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.booking_attempts_succeeded_at_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS booking_attempts_succeeded_at_idx
ON guard.booking_attempts (finished_at, state) WHERE state IN ('booked', 'recovered');
