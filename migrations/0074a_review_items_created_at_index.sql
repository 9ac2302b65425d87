-- transactional: false
-- 0074a_review_items_created_at_index: the daily report counts the review items created on its
-- day; without an index it read every item ever opened, a cost that grew with the history (and
-- BI counts items per day the same way). Built CONCURRENTLY (review items are written on); a
-- re-run after an interrupted build drops an INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.review_items while it builds (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('guard.review_items_created_at_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX guard.review_items_created_at_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS review_items_created_at_idx
ON guard.review_items (created_at);
