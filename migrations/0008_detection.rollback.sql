DROP TRIGGER alerts_notify_insert ON guard.alerts;

DROP FUNCTION guard.reconcile(boolean);

DROP FUNCTION guard.review_sweep();

DROP FUNCTION guard.review_close(bigint, text, text, text, boolean);

DROP FUNCTION guard.review_claim(text, integer);

DROP FUNCTION guard.enqueue_review(bigint, bigint, bigint, text, jsonb);

DROP FUNCTION guard.notify_new_alerts();

DROP FUNCTION guard.check_call(bigint);

DROP FUNCTION guard.detect();

DROP FUNCTION guard.run_detection(timestamptz, bigint);

DROP TYPE guard.finding;

DELETE FROM guard.alerts
WHERE rule_id IN (
    SELECT r.id FROM guard.rules AS r
    WHERE r.check_view IS NOT NULL
);

DELETE FROM guard.rules
WHERE check_view IS NOT NULL;

DROP VIEW guard.check_booking_failure_anomaly;

DROP VIEW guard.check_cross_tenant_link;

DROP VIEW guard.check_recent_booking_failure;

DROP VIEW guard.check_orphaned_voice_appointment;

DROP VIEW guard.check_call_without_direction;

DROP VIEW guard.check_booked_without_appointment;

DROP VIEW guard.check_flags_contradict_appointments;

DELETE FROM guard.settings
WHERE key = 'detection_window_minutes';
