-- transactional: false
-- The index behind resolved notifications (guard.claim_resolved_deliveries): per channel, the
-- delivered rows not yet announced resolved. Without it every round of a dispatcher with
-- `--resolved` would read all delivered rows of the channel. Built CONCURRENTLY: deliveries go
-- on meanwhile. Two statements so a re-run after an interrupted build is safe: the first drops an
-- INVALID leftover (IF NOT EXISTS would skip the index), the second builds it.

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.alert_deliveries_resolution_due_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.alert_deliveries_resolution_due_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_deliveries_resolution_due_idx
ON guard.alert_deliveries (channel, alert_id)
WHERE status = 'delivered' AND resolved_sent_at IS NULL;
