-- transactional: false
-- Rollback of 0085b_queued_attempts_index.

DROP INDEX CONCURRENTLY IF EXISTS guard.booking_attempts_queued_at_idx;
