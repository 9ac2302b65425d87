-- transactional: false
-- 0074b_review_items_unsettled_index: the daily report counts each company's review items still
-- open or claimed; without an index it read every item ever closed. Built CONCURRENTLY; a re-run
-- after an interrupted build drops an INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.review_items while it builds (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.review_items_unsettled_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.review_items_unsettled_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS review_items_unsettled_idx
ON guard.review_items (company_id) WHERE status IN ('open', 'claimed');
