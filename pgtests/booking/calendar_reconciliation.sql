-- The calendar's reconciliation: bad input and another tenant's rows are refused without a
-- write; a booking only the calendar has is recorded for its known call (the triggers derive
-- the flags, an unsettled attempt is closed) or queued for review; a booking cancelled in the
-- calendar cancels its appointment, one it has at another time is moved to that time; an active
-- appointment the calendar lost is queued, never deleted; every second call with the same
-- calendar answer writes nothing.
BEGIN;
SELECT plan(38);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO services (id, company_id, name) VALUES (7, 1, 'S');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome) SELECT
    g,
    CASE WHEN g = 9 THEN 2 ELSE 1 END,
    'c' || g,
    'in_progress'
FROM generate_series(1, 9) AS g;

-- bad writes are refused, and nothing is written
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(1, NULL, 'booked', NULL, NULL)$$,
    '22004', NULL, 'a NULL booking uid is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(1, 'u', 'accepted', NULL, NULL)$$,
    '22023', 'unknown calendar status "accepted"', 'an unknown calendar status is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(424242, 'u', 'booked', NULL, NULL)$$,
    'P0002', 'company 424242 does not exist', 'an unknown company is refused'
);
SELECT guard.pin_company(2);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(NULL, 'u-tenant', 'booked', NULL, NULL, 1)$$,
    '42501', NULL, 'a booking of another tenant''s call is refused under a tenant session'
);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(1, 'u-tenant', 'booked', NULL, NULL, 1)$$,
    '42501', NULL, 'so is a calendar of another company than the session''s'
);
SELECT set_config('booking_guard.company_id', '', TRUE);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(1, 'u-other', 'booked', NULL, NULL, 9)$$,
    '22023', NULL, 'a call of another company than the calendar''s is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, NULL, now(), now(), '{}')$$,
    '22004', NULL, 'queue_missing_in_calendar refuses a NULL window'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, now(), now() - interval '1 day', now(), '{}')$$,
    '22023', NULL, 'queue_missing_in_calendar refuses since after until'
);
SELECT is(
    (SELECT count(*)::int FROM appointments) + (SELECT count(*)::int FROM guard.review_items),
    0, 'none of them wrote an appointment or a review item'
);

-- in the calendar, not in the database, call known by the id the calendar keeps: the caller
-- records it (as the application, the way the booking path does) in the same transaction
CREATE TEMPORARY TABLE decision AS
SELECT * FROM guard.reconcile_calendar_booking(1, 'uid-hint', 'booked', '2030-01-01 10:00Z', '2030-01-01 10:30Z', 1);
SELECT results_eq(
    $$SELECT action, call_id, call_company_id, service_id, attempt_to_close, changed FROM decision$$,
    $$VALUES ('record', 1::bigint, 1::bigint, NULL::bigint, NULL::text, FALSE)$$,
    'a calendar-only booking of a known call is to be recorded for that call, and nothing is written yet'
);
INSERT INTO appointments (company_id, call_id, customer_id, service_id, calcom_v2_booking_id, source, starts_at, ends_at)
SELECT
    call_company_id,
    call_id,
    customer_id,
    service_id,
    'uid-hint',
    'retell_webhook',
    '2030-01-01 10:00Z',
    '2030-01-01 10:30Z'
FROM decision;
UPDATE calls SET booking_id = 'uid-hint', booking_confirmed = TRUE
WHERE id = 1;
SELECT results_eq(
    $$SELECT c.booking_id, c.appointment_made, c.session_outcome, c.booking_confirmed, a.status
      FROM calls AS c JOIN appointments AS a ON a.call_id = c.id WHERE c.id = 1$$,
    $$VALUES ('uid-hint', TRUE, 'appointment_booked', TRUE, 'scheduled')$$,
    'recorded as the booking path records it, the flags derived by the triggers'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(
        1, 'uid-hint', 'booked', '2030-01-01 10:00Z', '2030-01-01 10:30Z', 1)$$,
    $$VALUES ('in_sync', FALSE)$$,
    'a second run with the same answer finds it in sync and writes nothing'
);

-- call known by the idempotency key of an attempt still calling past its timeout
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1, 2, 7, 'key-stale', now() - interval '1 hour'), (1, 3, 7, 'key-fresh', now());
SELECT results_eq(
    $$SELECT action, call_id, service_id, attempt_to_close
      FROM guard.reconcile_calendar_booking(1, 'uid-key', 'booked', NULL, NULL, NULL, 'key-stale')$$,
    $$VALUES ('record', 2::bigint, 7::bigint, 'key-stale')$$,
    'a booking carrying the key of an attempt past its timeout is to be recorded for its call and service, closing the attempt'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(1, 'uid-fresh', 'booked', NULL, NULL, NULL, 'key-fresh')$$,
    $$VALUES ('in_flight', FALSE)$$,
    'an attempt still calling within its timeout is left to its booking path'
);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(1, 'uid-fresh', 'booked', NULL, NULL, 4, 'key-fresh')$$,
    '22023', NULL, 'a call id that contradicts the attempt of the key is refused'
);

-- call known by the uid the application wrote on it (calls.booking_id)
UPDATE calls SET booking_id = 'uid-on-call'
WHERE id = 4;
SELECT results_eq(
    $$SELECT action, call_id FROM guard.reconcile_calendar_booking(1, 'uid-on-call', 'booked', NULL, NULL)$$,
    $$VALUES ('record', 4::bigint)$$,
    'a booking whose uid is on exactly one call is to be recorded for that call'
);

-- in the calendar, not in the database, call unknown: queued once
SELECT results_eq(
    $$SELECT action, call_id, changed FROM guard.reconcile_calendar_booking(1, 'uid-ui', 'booked', '2030-01-02 09:00Z', NULL)$$,
    $$VALUES ('queued', NULL::bigint, TRUE)$$,
    'a booking made in the calendar''s UI for no known call is queued'
);
SELECT results_eq(
    $$SELECT company_id, call_id, priority::int, details ->> 'problem', details ? 'starts_at'
      FROM guard.review_items WHERE reason = 'calendar_only_booking' AND details ->> 'booking_uid' = 'uid-ui'$$,
    $$VALUES (1::bigint, NULL::bigint, 1, 'call_unknown', TRUE)$$,
    'as review item calendar_only_booking of the calendar''s company, priority 1'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(1, 'uid-ui', 'booked', '2030-01-02 09:00Z', NULL)$$,
    $$VALUES ('queued', FALSE)$$,
    'a second run names the same item and writes nothing'
);
UPDATE guard.review_items SET status = 'dismissed', closed_at = now(), note = 'a walk-in'
WHERE details ->> 'booking_uid' = 'uid-ui';
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(1, 'uid-ui', 'booked', '2030-01-02 09:00Z', NULL)$$,
    $$VALUES ('queued', FALSE)$$,
    'an item a person closed is not opened again'
);
CREATE TEMPORARY TABLE second_booking AS
SELECT * FROM guard.reconcile_calendar_booking(1, 'uid-second', 'booked', NULL, NULL, 1);
SELECT results_eq(
    $$SELECT x.action, r.call_id, r.details ->> 'problem' FROM second_booking AS x
      JOIN guard.review_items AS r ON r.id = x.review_item_id$$,
    $$VALUES ('queued', 1::bigint, 'call_already_booked')$$,
    'a second booking in the calendar for a call that has one is queued, not recorded'
);
UPDATE guard.review_items SET status = 'resolved', closed_at = now(), note = 'cancelled in the calendar'
WHERE details ->> 'booking_uid' = 'uid-second';

-- cancelled in the calendar, active in the database: cancelled, the flags derived
SELECT results_eq(
    $$SELECT action, call_id, changed FROM guard.reconcile_calendar_booking(1, 'uid-hint', 'cancelled', NULL, NULL)$$,
    $$VALUES ('cancelled', 1::bigint, TRUE)$$,
    'a booking cancelled in the calendar cancels its active appointment'
);
SELECT results_eq(
    $$SELECT a.status, c.appointment_made, c.session_outcome FROM appointments AS a JOIN calls AS c ON c.id = a.call_id
      WHERE a.calcom_v2_booking_id = 'uid-hint'$$,
    $$VALUES ('cancelled', FALSE, 'appointment_cancelled')$$,
    'the appointment is cancelled (not deleted) and the triggers derive the call''s flags'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(1, 'uid-hint', 'cancelled', NULL, NULL)$$,
    $$VALUES ('in_sync', FALSE)$$,
    'a second run writes nothing'
);
CREATE TEMPORARY TABLE booked_again AS
SELECT * FROM guard.reconcile_calendar_booking(1, 'uid-hint', 'booked', NULL, NULL);
SELECT results_eq(
    $$SELECT x.action, r.details ->> 'problem' FROM booked_again AS x
      JOIN guard.review_items AS r ON r.id = x.review_item_id$$,
    $$VALUES ('queued', 'cancelled_in_database')$$,
    'booked in the calendar but cancelled in the database: a person decides'
);

-- active in the database, absent from the calendar: queued, never deleted
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at, created_at) VALUES
(101, 1, 5, 'uid-lost', '2030-01-03 10:00Z', now() - interval '1 day'),
(102, 1, 6, NULL, '2030-01-03 11:00Z', now() - interval '1 day'),
(103, 1, 7, 'uid-late', '2030-01-03 12:00Z', now()),
(104, 1, 8, 'uid-later', '2030-03-01 10:00Z', now() - interval '1 day'),
(105, 2, 9, 'uid-b', '2030-01-03 10:00Z', now() - interval '1 day');
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, '2030-01-01', '2030-02-01', now() - interval '1 hour', '{}', 0)$$,
    '54000', NULL, 'more missing appointments than max_items is refused'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.review_items
        WHERE reason = 'missing_in_calendar'
    ),
    0,
    'and nothing is queued'
);
SELECT results_eq(
    $$SELECT appointment_id, call_id, queued FROM guard.queue_missing_in_calendar(
        1, '2030-01-01', '2030-02-01', now() - interval '1 hour', ARRAY['uid-key', 'uid-on-call', 'uid-hint'])$$,
    $$VALUES (101::bigint, 5::bigint, TRUE)$$,
    'an active appointment of the window with a uid the calendar did not list is queued (not one'
    || ' without a uid, recorded after the calendar was asked, outside the window or of another company)'
);
SELECT results_eq(
    $$SELECT appointment_id, call_id, queued FROM guard.queue_missing_in_calendar(
        1, '2030-01-01', '2030-02-01', now() - interval '1 hour', ARRAY['uid-key', 'uid-on-call', 'uid-hint'])$$,
    $$VALUES (101::bigint, 5::bigint, FALSE)$$,
    'a second run names the same items and writes nothing'
);
SELECT results_eq(
    $$SELECT r.company_id, r.appointment_id, r.priority::int, r.details ->> 'booking_uid', a.status
      FROM guard.review_items AS r JOIN appointments AS a ON a.id = r.appointment_id
      WHERE r.reason = 'missing_in_calendar' ORDER BY r.appointment_id$$,
    $$VALUES (1::bigint, 101::bigint, 2, 'uid-lost', 'scheduled')$$,
    'as review item missing_in_calendar of priority 2; the appointment stays as it is'
);
SELECT guard.pin_company(2);
SELECT results_eq(
    $$SELECT appointment_id FROM guard.queue_missing_in_calendar(NULL, '2030-01-01', '2030-02-01', now(), '{}')$$,
    ARRAY[105::bigint],
    'under a tenant session only that tenant''s appointments are compared'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, '2030-01-01', '2030-02-01', now(), '{}')$$,
    '42501', NULL, 'and another company''s calendar is refused'
);
SELECT set_config('booking_guard.company_id', '', TRUE);

-- an existing bad row the application wrote by itself: reconciliation corrects it
INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id) VALUES (1, 6, 'uid-app');
SELECT results_eq(
    $$SELECT action FROM guard.reconcile_calendar_booking(1, 'uid-app', 'cancelled', NULL, NULL)$$,
    $$VALUES ('cancelled')$$,
    'an appointment the application still holds active after a cancellation in the calendar is cancelled'
);

-- booked on both sides, moved in the calendar's UI: the appointment takes the calendar's time
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at, ends_at)
VALUES (90, 1, 7, 'uid-moved', '2030-03-01 09:00Z', '2030-03-01 09:30Z');
SELECT results_eq(
    $$SELECT action, appointment_id, changed FROM guard.reconcile_calendar_booking(
        1, 'uid-moved', 'booked', '2030-03-02 14:00Z', '2030-03-02 14:45Z')$$,
    $$VALUES ('rescheduled', 90::bigint, TRUE)$$,
    'a booking the calendar has at another time is rescheduled'
);
SELECT results_eq(
    $$SELECT a.starts_at, a.ends_at, c.appointment_made FROM appointments AS a
      JOIN calls AS c ON c.id = a.call_id WHERE a.id = 90$$,
    $$VALUES ('2030-03-02 14:00Z'::timestamptz, '2030-03-02 14:45Z'::timestamptz, TRUE)$$,
    'to the calendar''s start and end; the call stays booked'
);
SELECT results_eq(
    $$SELECT before ->> 'starts_at' IS NOT NULL, (after ->> 'starts_at')::timestamptz
      FROM guard.correction_audit WHERE entity_type = 'appointment' AND entity_id = 90$$,
    $$VALUES (TRUE, '2030-03-02 14:00Z'::timestamptz)$$,
    'audited with the time before and after'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(
        1, 'uid-moved', 'booked', '2030-03-02 14:00Z', '2030-03-02 14:45Z')$$,
    $$VALUES ('in_sync', FALSE)$$,
    'a second run with the same answer is in sync and writes nothing'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(1, 'uid-moved', 'booked', NULL, NULL)$$,
    $$VALUES ('in_sync', FALSE)$$,
    'a calendar that gives no time moves nothing'
);

SELECT * FROM finish();
ROLLBACK;
