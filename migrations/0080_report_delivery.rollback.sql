-- Rollback of 0080_report_delivery: the report outbox and the digest record go, and so does the
-- minimum severity of skips recorded for one (their rows stay: deliveries skipped, and when).
-- The functions that use them are definitions: the level rolled back to brings its own.

ALTER TABLE guard.delivery_skips DROP COLUMN below_severity;

DROP TABLE guard.alert_digests;
DROP TABLE guard.report_deliveries;
DROP TABLE guard.report_subscriptions;
