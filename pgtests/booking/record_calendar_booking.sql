-- guard.record_calendar_booking: a booking only the calendar holds (recovery, a failover's
-- orphan, the calendar's reconciliation). Bad input is refused and writes nothing; a booking is
-- recorded as the call's appointment with the call's flags derived; recorded again it is found,
-- not written twice; with a key the attempt is closed, and an attempt settled meanwhile is
-- refused with nothing written.
BEGIN;
SELECT plan(10);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id, direction)
SELECT
    g,
    1,
    'c' || g,
    'inbound'
FROM generate_series(1, 3) AS g;
INSERT INTO services (id, company_id, name) VALUES (7, 1, 'Cut');

SELECT throws_ok(
    $$SELECT guard.record_calendar_booking(1, 7, NULL, NULL, NULL, '{}', 'test')$$,
    '22004', NULL, 'a NULL booking uid is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_calendar_booking(NULL, 7, 'uid-1', NULL, NULL, '{}', 'test')$$,
    '22004', NULL, 'a NULL call is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_calendar_booking(424242, 7, 'uid-1', NULL, NULL, '{}', 'test')$$,
    'P0002', 'call 424242 does not exist', 'an unknown call is refused'
);
SELECT is((SELECT count(*)::int FROM appointments), 0, 'none of them wrote an appointment');

-- a booking only the calendar had, without an attempt
CREATE TEMPORARY TABLE recorded AS
SELECT guard.record_calendar_booking(
    1, 7, 'uid-1', '2026-12-01 10:00Z', '2026-12-01 10:30Z', '{"room": 3}', 'test'
) AS appointment_id;
SELECT results_eq(
    $$SELECT a.id = r.appointment_id, a.calcom_v2_booking_id, a.starts_at, a.source,
             c.booking_id, c.booking_details, c.appointment_made,
             current_setting('synchronous_commit')
      FROM appointments AS a JOIN calls AS c ON c.id = a.call_id, recorded AS r
      WHERE c.id = 1$$,
    $$VALUES (TRUE, 'uid-1'::text, '2026-12-01 10:00Z'::timestamptz, 'test'::text, 'uid-1'::text,
              '{"room": 3}'::jsonb, TRUE, 'on'::text)$$,
    'the appointment, the call''s booking and flags; the commit made durable'
);
SELECT is(
    guard.record_calendar_booking(1, 7, 'uid-1', NULL, NULL, '{}', 'test'),
    (SELECT appointment_id FROM recorded),
    'recorded again, the booking is found'
);
SELECT is(
    (
        SELECT count(*)::int FROM appointments
        WHERE call_id = 1
    ),
    1,
    'not written twice'
);

-- an attempt's booking: the attempt is closed as booked
CREATE TEMPORARY TABLE started AS SELECT * FROM guard.begin_booking(2, 7, 0);
SELECT guard.record_calendar_booking(
    2, 7, 'uid-2', NULL, NULL, '{}', 'test', (SELECT idempotency_key FROM started)
);
SELECT results_eq(
    $$SELECT b.state, b.appointment_id = a.id, b.calendar_calls
      FROM guard.booking_attempts AS b JOIN appointments AS a ON a.call_id = b.call_id
      WHERE b.call_id = 2$$,
    $$VALUES ('booked'::text, TRUE, NULL::integer)$$,
    'the attempt is closed as booked with the appointment (its calendar calls unknown)'
);

-- an attempt settled meanwhile: refused, nothing written
SELECT throws_ok(
    $$SELECT guard.record_calendar_booking(
        3, 7, 'uid-3', NULL, NULL, '{}', 'test', (SELECT idempotency_key FROM started))$$,
    '55000', NULL, 'an attempt settled meanwhile is refused'
);
SELECT is(
    (
        SELECT count(*)::int FROM appointments
        WHERE call_id = 3
    ),
    0,
    'and nothing written'
);

SELECT * FROM finish();
ROLLBACK;
