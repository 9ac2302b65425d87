-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS guard.alert_deliveries_resolution_due_idx;
