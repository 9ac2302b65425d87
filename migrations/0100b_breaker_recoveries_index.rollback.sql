-- transactional: false
-- Rollback of 0100b_breaker_recoveries_index.

DROP INDEX CONCURRENTLY IF EXISTS guard.breaker_events_recovered_at_idx;
