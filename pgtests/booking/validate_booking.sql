-- guard.validate_booking: success and each failure reason, each recorded with its latency;
-- guard.rollback_booking: flags, alert and review item together.
BEGIN;
SELECT plan(15);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;
INSERT INTO calls (id, company_id, retell_call_id) SELECT
    g,
    1,
    'c' || g
FROM generate_series(1, 4) AS g;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES
(1, 1, 1, 'uid-1'), (2, 1, 2, 'uid-2'), (3, 1, NULL, 'uid-3');

SELECT results_eq(
    $$SELECT ok, reason FROM guard.validate_booking(1, 1, 'uid-1')$$,
    $$VALUES (TRUE, NULL::text)$$, 'a good booking validates'
);
SELECT throws_ok(
    $$SELECT ok, reason FROM guard.validate_booking(99, 1, 'uid-1')$$,
    'P0002', 'call 99 does not exist', 'an unknown call is refused (nothing recorded)'
);
SELECT results_eq(
    $$SELECT ok, reason, details FROM guard.validate_booking(1, 99, 'uid-1')$$,
    $$VALUES (FALSE, 'appointment_not_found', '{"appointment_id": 99}'::jsonb)$$,
    'an unknown appointment is the result appointment_not_found (recorded), not an error'
);
SELECT results_eq(
    $$SELECT reason, details ->> 'appointment_call_id' FROM guard.validate_booking(1, 2, 'uid-2')$$,
    $$VALUES ('appointment_not_on_call', '2')$$, 'appointment_not_on_call, with what was found'
);
SELECT results_eq(
    $$SELECT reason, details ->> 'found' FROM guard.validate_booking(1, 1, 'uid-other')$$,
    $$VALUES ('booking_uid_mismatch', 'uid-1')$$, 'booking_uid_mismatch'
);
UPDATE appointments SET created_at = now() - interval '1 hour'
WHERE id = 1;
SELECT results_eq(
    $$SELECT reason FROM guard.validate_booking(1, 1, 'uid-1')$$,
    $$VALUES ('appointment_not_recent')$$, 'appointment_not_recent'
);
ALTER TABLE appointments DISABLE TRIGGER guard_appointments_sync_insert;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES (4, 1, 3, 'uid-4');
ALTER TABLE appointments ENABLE TRIGGER guard_appointments_sync_insert;
SELECT results_eq(
    $$SELECT reason, details ->> 'appointment_made' FROM guard.validate_booking(3, 4, 'uid-4')$$,
    $$VALUES ('call_flags_disagree', 'false')$$, 'call_flags_disagree: the flags were not derived'
);
UPDATE appointments SET status = 'cancelled'
WHERE id = 2;
SELECT results_eq(
    $$SELECT reason FROM guard.validate_booking(2, 2, 'uid-2')$$,
    $$VALUES ('appointment_inactive')$$, 'appointment_inactive'
);
ALTER TABLE appointments DROP CONSTRAINT guard_appointments_call_company_fkey;
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES (5, 2, 4, 'uid-5');
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT reason FROM guard.validate_booking(4, 5, 'uid-5')$$,
    $$VALUES ('company_mismatch')$$, 'company_mismatch'
);
SELECT results_eq(
    $$SELECT count(*)::int, count(*) FILTER (WHERE ok)::int, bool_and(latency_ms >= 0 AND latency_ms < 1000)
      FROM guard.validation_metrics$$,
    $$VALUES (8, 1, TRUE)$$,
    'every validation is recorded with its latency (the refused unknown call is not)'
);
SELECT results_eq(
    $$SELECT sum(validations)::int, sum(failures)::int, bool_and(p95_ms IS NOT NULL)
      FROM guard.validation_latency_daily$$,
    $$VALUES (8, 7, TRUE)$$,
    'the daily view counts them (per company) and gives percentiles'
);

-- rollback_booking
SELECT isnt(
    guard.rollback_booking(2, 'validation_failure', '{"validation": "call_flags_disagree"}'),
    NULL, 'rollback returns the review item'
);
SELECT results_eq(
    $$SELECT session_outcome, appointment_link_status, booking_failed, requires_manual_processing,
             booking_failure_reason
      FROM calls WHERE id = 2$$,
    $$VALUES ('creation_failed', 'creation_failed', TRUE, TRUE, 'validation_failure')$$,
    'the call is marked failed (outcome and link status) and for manual processing'
);
SELECT results_eq(
    $$SELECT (SELECT priority::int FROM guard.review_items WHERE call_id = 2),
             (SELECT check_id FROM guard.alerts WHERE entity_id = 2 AND status = 'open')$$,
    $$VALUES (1, 'booking_rolled_back')$$,
    'with a priority-1 review item and an alert'
);
SELECT throws_ok(
    $$SELECT guard.rollback_booking(424242, 'other')$$, 'P0002', 'call 424242 does not exist',
    'rolling back an unknown call is an error'
);

SELECT * FROM finish();
ROLLBACK;
