-- transactional: false
-- 0085b_queued_attempts_index: the counters of `guard metrics` (guard_bookings_total{outcome=
-- "queued"}) and guard.fold_metric_totals read the attempts settled as queued since their
-- watermark by when they settled, as they read the failed ones (0067a), without reading the
-- whole journal. Built CONCURRENTLY (the booking path writes on); a re-run after an interrupted
-- build drops an INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.booking_attempts while it builds (reads and writes go
-- on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.booking_attempts_queued_at_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.booking_attempts_queued_at_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS booking_attempts_queued_at_idx
ON guard.booking_attempts (finished_at) WHERE state = 'queued';
