-- transactional: false
-- Rollback of 0074a_review_items_created_at_index.

DROP INDEX CONCURRENTLY IF EXISTS guard.review_items_created_at_idx;
