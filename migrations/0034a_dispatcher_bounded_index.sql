-- transactional: false
-- The indexes of a bounded dispatcher wake-up (0034_dispatcher_bounded). The claim orders a
-- channel's pending rows by (next_attempt_at, alert_id): with the old index on
-- (channel, next_attempt_at) the many rows one statement enqueued at the same instant were
-- sorted in full at every claim (100 000 rows for a batch of 200); with alert_id in the index the
-- claim stops after its batch. The claimed rows get their own small index for the release and
-- the next lease end. Built CONCURRENTLY: deliveries go on meanwhile. A re-run after an
-- interrupted build is safe: an INVALID leftover is dropped first (IF NOT EXISTS would keep it).
-- The old alert_deliveries_due_idx is now redundant; it stays until a later migration drops it
-- (tests/db/test_lock_table.py does not observe DROP INDEX CONCURRENTLY yet).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.alert_deliveries_due_order_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.alert_deliveries_due_order_idx;
    END IF;
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.alert_deliveries_claimed_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.alert_deliveries_claimed_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_deliveries_due_order_idx
ON guard.alert_deliveries (channel, next_attempt_at, alert_id)
WHERE status = 'pending';

CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_deliveries_claimed_idx
ON guard.alert_deliveries (channel, claimed_until)
WHERE claimed_until IS NOT NULL;
