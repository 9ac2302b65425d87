-- transactional: false
-- Rollback of 0071a_succeeded_attempts_index.

DROP INDEX CONCURRENTLY IF EXISTS guard.booking_attempts_succeeded_at_idx;
