-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS guard.alert_deliveries_claimed_idx;

DROP INDEX CONCURRENTLY IF EXISTS guard.alert_deliveries_due_order_idx;
