-- transactional: false
-- 0100b_breaker_recoveries_index: guard_breaker_recovery_seconds (`guard metrics`) and
-- guard.fold_metric_totals read the circuits' recoveries (half_open -> closed events) recorded
-- since their watermark by when they were recorded, without reading every event retention keeps.
-- Built CONCURRENTLY (the breakers' write-behind inserts on); a re-run after an interrupted build
-- drops an INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.breaker_events while it builds (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.breaker_events_recovered_at_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.breaker_events_recovered_at_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS breaker_events_recovered_at_idx
ON guard.breaker_events (recorded_at) WHERE from_state = 'half_open' AND to_state = 'closed';
