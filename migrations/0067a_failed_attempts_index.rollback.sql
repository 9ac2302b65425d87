-- transactional: false
-- Rollback of 0067a_failed_attempts_index.

DROP INDEX CONCURRENTLY IF EXISTS guard.booking_attempts_failed_at_idx;
