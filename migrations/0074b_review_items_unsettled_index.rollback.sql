-- transactional: false
-- Rollback of 0074b_review_items_unsettled_index.

DROP INDEX CONCURRENTLY IF EXISTS guard.review_items_unsettled_idx;
