-- I7, the booking path for any client: guard.begin_booking and guard.record_booking. Bad input
-- is refused and writes nothing; a booking is recorded, validated and its attempt closed in one
-- call; recorded twice it is recorded once; a booking that does not validate, or that a deferred
-- constraint refuses, is rolled back and queued for review with the validation kept; another
-- tenant's attempt is refused.
BEGIN;
SELECT plan(19);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id, direction)
SELECT
    g,
    CASE WHEN g = 9 THEN 2 ELSE 1 END,
    'c' || g,
    'inbound'
FROM generate_series(1, 9) AS g;
INSERT INTO services (id, company_id, name) VALUES (7, 1, 'Cut');

-- begin_booking: bad waits are refused, nothing is journaled
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking(1, 7, -1)', '22023', NULL, 'a negative wait is refused'
);
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking(1, 7, 300.5)', '22023', NULL, 'a wait over 300 s is refused'
);
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking(1, 7, NULL)', '22023', NULL, 'a NULL wait is refused'
);
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking(424242, 7)', 'P0002', 'call 424242 does not exist',
    'an unknown call is refused'
);
SELECT is((SELECT count(*)::int FROM guard.booking_attempts), 0, 'none of them journaled');

-- a started attempt; the commit is made durable
CREATE TEMPORARY TABLE started AS SELECT * FROM guard.begin_booking(1, 7, 300);
SELECT results_eq(
    $$SELECT outcome, current_setting('synchronous_commit') FROM started$$,
    $$VALUES ('started'::text, 'on'::text)$$,
    'begin_booking starts an attempt (a 300 s wait is allowed) and makes the commit durable'
);
SELECT results_eq(
    $$SELECT outcome, idempotency_key FROM guard.begin_booking(1, 7, 0)$$,
    $$SELECT 'in_flight'::text, idempotency_key FROM started$$,
    'without a wait, a second attempt while one is calling is in_flight at once'
);

-- record_booking: bad input is refused and writes nothing
SELECT throws_ok(
    $$SELECT * FROM guard.record_booking((SELECT idempotency_key FROM started), NULL)$$,
    '22004', NULL, 'a NULL booking uid is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.record_booking('no-such-key', 'uid-x')$$,
    'P0002', NULL, 'an unknown key is refused'
);
SELECT guard.pin_company(2);
SELECT throws_ok(
    $$SELECT * FROM guard.record_booking((SELECT idempotency_key FROM started), 'uid-1')$$,
    '42501', NULL, 'another tenant''s attempt is refused'
);
SELECT set_config('booking_guard.company_id', '', TRUE);
SELECT is((SELECT count(*)::int FROM appointments), 0, 'none of them wrote an appointment');

-- a booking recorded, validated and closed in one call
SELECT results_eq(
    $$SELECT outcome, review_item_id, reason FROM guard.record_booking(
        (SELECT idempotency_key FROM started), 'uid-1', '2026-12-01 10:00Z', '2026-12-01 10:30Z',
        '{"room": 3}', 'test', 2)$$,
    $$VALUES ('booked'::text, NULL::bigint, NULL::text)$$,
    'record_booking answers booked'
);
SELECT results_eq(
    $$SELECT a.calcom_v2_booking_id, a.starts_at, c.booking_id, c.booking_details, c.appointment_made,
             b.state, b.calendar_calls, b.appointment_id = a.id
      FROM appointments AS a JOIN calls AS c ON c.id = a.call_id
      JOIN guard.booking_attempts AS b ON b.call_id = c.id
      WHERE c.id = 1$$,
    $$VALUES ('uid-1'::text, '2026-12-01 10:00Z'::timestamptz, 'uid-1'::text, '{"room": 3}'::jsonb,
              TRUE, 'booked'::text, 2, TRUE)$$,
    'the appointment, the call''s booking and flags, and the closed attempt'
);
SELECT results_eq(
    $$SELECT outcome FROM guard.record_booking((SELECT idempotency_key FROM started), 'uid-1')$$,
    $$VALUES ('already_booked'::text)$$,
    'recorded again, the booking is found, not written twice'
);
SELECT is(
    (
        SELECT count(*)::int FROM appointments
        WHERE call_id = 1
    ),
    1,
    'one appointment'
);

-- a booking that does not validate: the flags are no longer derived
ALTER TABLE appointments DISABLE TRIGGER guard_appointments_sync_insert;
CREATE TEMPORARY TABLE invalid AS SELECT * FROM guard.begin_booking(2, 7);
CREATE TEMPORARY TABLE invalid_recorded AS
SELECT * FROM guard.record_booking((SELECT idempotency_key FROM invalid), 'uid-2');
SELECT results_eq(
    $$SELECT r.outcome, r.reason, i.reason, i.details ->> 'booking_uid', b.state
      FROM invalid_recorded AS r
      JOIN guard.review_items AS i ON i.id = r.review_item_id
      JOIN guard.booking_attempts AS b ON b.call_id = 2$$,
    $$VALUES ('failed'::text, 'call_flags_disagree'::text, 'validation_failure'::text, 'uid-2'::text,
              'failed'::text)$$,
    'a booking that does not validate is failed, and queued for review with its uid'
);
SELECT results_eq(
    $$SELECT (SELECT count(*)::int FROM appointments WHERE call_id = 2),
             (SELECT array_agg(failure_reason) FROM guard.validation_metrics WHERE call_id = 2)$$,
    $$VALUES (0, ARRAY['call_flags_disagree']::text[])$$,
    'its appointment is rolled back and its failed validation is kept'
);
ALTER TABLE appointments ENABLE TRIGGER guard_appointments_sync_insert;

-- a booking a deferred constraint refuses, with a phone number in the refusal
CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'refused for +49 170 1234567'; END$$;
CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON appointments
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
CREATE TEMPORARY TABLE refused AS SELECT * FROM guard.begin_booking(3, 7);
CREATE TEMPORARY TABLE refused_recorded AS
SELECT * FROM guard.record_booking((SELECT idempotency_key FROM refused), 'uid-3');
SELECT results_eq(
    $$SELECT r.outcome, r.reason, i.reason, i.details ->> 'message' !~ '1234567',
             (i.details ->> 'calendar_booked')::boolean
      FROM refused_recorded AS r
      JOIN guard.review_items AS i ON i.id = r.review_item_id$$,
    $$VALUES ('failed'::text, 'recording failed: SQLSTATE P0001'::text,
              'calendar_booking_failure'::text, TRUE, TRUE)$$,
    'a refusal at commit is a failure recorded by the call, the phone number masked'
);
SELECT is(
    (
        SELECT count(*)::int FROM appointments
        WHERE call_id = 3
    ),
    0,
    'nothing of it is left'
);

SELECT * FROM finish();
ROLLBACK;
