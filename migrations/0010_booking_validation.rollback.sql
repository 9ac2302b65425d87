DROP FUNCTION guard.rollback_booking(bigint, text, jsonb);

DROP VIEW guard.validation_latency_daily;

DROP FUNCTION guard.validate_booking(bigint, bigint, text);

DROP FUNCTION guard.record_validation(bigint, bigint, bigint, boolean, text, double precision);

DELETE FROM guard.alerts
WHERE rule_id = 'booking_rolled_back';

DELETE FROM guard.rules
WHERE id = 'booking_rolled_back';
