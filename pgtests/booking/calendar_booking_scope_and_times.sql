-- guard.reconcile_calendar_booking, what it touches and what it keeps:
-- - a calendar of one company touches that company's rows only, even where another company's
--   appointment carries the same uid by mistake, and a tenant session is not refused because of
--   such a row or of other tenants' rows with other uids; with no company given (a calendar of
--   every company) a row of another tenant than the session's is refused;
-- - a time the calendar does not give is kept: a new start with no end moves the start only,
--   a new end with no start the end only; the audit has each appointment's own time before;
-- - an attempt still calling exactly at its timeout is in flight (its booking path records it),
--   one a microsecond older is not;
-- - a booking of a known call is recorded unless the call has an active appointment of its own:
--   a cancelled one, or another company's linked to it, does not count; the service recorded is
--   that of the call's newest attempt, not of another call's; a booking of a call that has its
--   own is queued naming that appointment, and one of an unknown call from a calendar of every
--   company is queued for the session's tenant.
BEGIN;
SELECT plan(17);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1'), (2, 2, 'c2'), (3, 1, 'c3');
-- earlier rows first, so that the rescheduled ones are not the table's first
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at, ends_at) VALUES
(980, 2, 2, 'uid-other', '2030-01-01 08:00Z', '2030-01-01 08:30Z'),
(981, 1, 1, 'uid-dup', '2030-03-01 09:00Z', '2030-03-01 09:30Z'),
(982, 2, NULL, 'uid-dup', '2030-03-01 09:00Z', '2030-03-01 09:30Z'),
(983, 1, 3, 'uid-end', '2030-04-01 10:00Z', '2030-04-01 10:30Z');

SELECT guard.pin_company(1);
SELECT results_eq(
    $$SELECT action, appointment_id FROM guard.reconcile_calendar_booking(
        1, 'uid-dup', 'booked', '2030-03-02 14:00Z', NULL)$$,
    $$VALUES ('rescheduled', 981::bigint)$$,
    'reconcile_calendar_booking: company 1''s calendar under its tenant moves company 1''s row, '
    'whatever company 2 has under the same or other uids'
);
SELECT results_eq(
    $$SELECT action, changed FROM guard.reconcile_calendar_booking(NULL, 'uid-unknown', 'cancelled', NULL, NULL)$$,
    $$VALUES ('in_sync', FALSE)$$,
    'reconcile_calendar_booking: a calendar of every company under a tenant is not refused for '
    'other tenants'' rows with other uids'
);
SELECT throws_ok(
    $$SELECT * FROM guard.reconcile_calendar_booking(NULL, 'uid-dup', 'cancelled', NULL, NULL)$$,
    '42501', NULL,
    'reconcile_calendar_booking: a calendar of every company is refused a row of another tenant'
);
SELECT set_config('booking_guard.company_id', '', TRUE);

SELECT results_eq(
    $$SELECT id, starts_at, ends_at FROM appointments WHERE id IN (981, 982) ORDER BY id$$,
    $$VALUES
        (981::bigint, '2030-03-02 14:00Z'::timestamptz, '2030-03-01 09:30Z'::timestamptz),
        (982, '2030-03-01 09:00Z', '2030-03-01 09:30Z')$$,
    'reconcile_calendar_booking: a start without an end moves the start only, of company 1''s row only'
);
SELECT results_eq(
    $$SELECT before, after FROM guard.correction_audit
      WHERE entity_type = 'appointment' AND entity_id = 981$$,
    $$VALUES (
        '{"starts_at": "2030-03-01T09:00:00+00:00", "ends_at": "2030-03-01T09:30:00+00:00"}'::jsonb,
        '{"starts_at": "2030-03-02T14:00:00+00:00", "ends_at": "2030-03-01T09:30:00+00:00"}'::jsonb
    )$$,
    'reconcile_calendar_booking: the audit has the appointment''s own time before and after'
);

SELECT results_eq(
    $$SELECT action, appointment_id FROM guard.reconcile_calendar_booking(
        1, 'uid-end', 'booked', NULL, '2030-04-01 11:00Z')$$,
    $$VALUES ('rescheduled', 983::bigint)$$,
    'reconcile_calendar_booking: a new end is a reschedule'
);
SELECT results_eq(
    $$SELECT starts_at, ends_at FROM appointments WHERE id = 983$$,
    $$VALUES ('2030-04-01 10:00Z'::timestamptz, '2030-04-01 11:00Z'::timestamptz)$$,
    'reconcile_calendar_booking: an end without a start moves the end only'
);

SELECT results_eq(
    $$SELECT action, appointment_id FROM guard.reconcile_calendar_booking(1, 'uid-dup', 'cancelled', NULL, NULL)$$,
    $$VALUES ('cancelled', 981::bigint)$$,
    'reconcile_calendar_booking: company 1''s calendar cancels company 1''s row'
);
SELECT results_eq(
    $$SELECT id, status FROM appointments WHERE id IN (981, 982) ORDER BY id$$,
    $$VALUES (981::bigint, 'cancelled'), (982, 'scheduled')$$,
    'reconcile_calendar_booking: company 2''s row with the same uid stays as it is'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.correction_audit
        WHERE entity_id IN (980, 982)
    ),
    0,
    'reconcile_calendar_booking: nothing of company 2 is audited'
);

UPDATE guard.settings SET value = '60'
WHERE key = 'booking_attempt_timeout_seconds';
INSERT INTO calls (id, company_id, retell_call_id) VALUES (4, 1, 'c4'), (5, 1, 'c5');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES
(1, 4, 9, 'at-timeout', now() - interval '60 seconds'),
(1, 5, 9, 'past-timeout', now() - interval '60 seconds 1 microsecond');
SELECT results_eq(
    $$SELECT action, call_id FROM guard.reconcile_calendar_booking(
        1, 'uid-at-timeout', 'booked', NULL, NULL, NULL, 'at-timeout')$$,
    $$VALUES ('in_flight', 4::bigint)$$,
    'reconcile_calendar_booking: an attempt calling for exactly its timeout is in flight'
);
SELECT results_eq(
    $$SELECT action, call_id, attempt_to_close FROM guard.reconcile_calendar_booking(
        1, 'uid-past-timeout', 'booked', NULL, NULL, NULL, 'past-timeout')$$,
    $$VALUES ('record', 5::bigint, 'past-timeout')$$,
    'reconcile_calendar_booking: one a microsecond past it is recorded for its call'
);

INSERT INTO calls (id, company_id, retell_call_id) VALUES (6, 1, 'c6'), (7, 1, 'c7'), (8, 1, 'c8');
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, status) VALUES
(986, 1, 6, 'uid-cancelled-before', 'cancelled'),
(987, 2, 7, 'uid-foreign', 'scheduled');
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT action, call_id FROM guard.reconcile_calendar_booking(1, 'uid-6', 'booked', NULL, NULL, 6)$$,
    $$VALUES ('record', 6::bigint)$$,
    'reconcile_calendar_booking: a call whose appointment was cancelled is recorded again'
);
SELECT results_eq(
    $$SELECT action, call_id FROM guard.reconcile_calendar_booking(1, 'uid-7', 'booked', NULL, NULL, 7)$$,
    $$VALUES ('record', 7::bigint)$$,
    'reconcile_calendar_booking: another company''s appointment linked to the call is not its booking'
);
INSERT INTO guard.booking_attempts (
    company_id, call_id, service_id, idempotency_key, state, finished_at, created_at
)
VALUES
(1, 8, 11, 'c8-first', 'failed', now(), now() - interval '3 hours'),
(1, 8, 12, 'c8-newest', 'failed', now(), now() - interval '2 hours'),
(1, 6, 13, 'c6-later', 'failed', now(), now() - interval '1 hour');
SELECT results_eq(
    $$SELECT action, service_id FROM guard.reconcile_calendar_booking(1, 'uid-8', 'booked', NULL, NULL, 8)$$,
    $$VALUES ('record', 12::bigint)$$,
    'reconcile_calendar_booking: with the service of the call''s newest attempt'
);

-- call 3 has appointment 983 (active): a second booking in the calendar is queued naming it
CREATE TEMPORARY TABLE second_booking AS
SELECT * FROM guard.reconcile_calendar_booking(1, 'uid-second', 'booked', NULL, NULL, 3);
SELECT results_eq(
    $$SELECT r.action, i.details ->> 'problem', (i.details ->> 'appointment_id')::bigint
      FROM second_booking AS r
      INNER JOIN guard.review_items AS i ON i.id = r.review_item_id$$,
    $$VALUES ('queued', 'call_already_booked', 983::bigint)$$,
    'reconcile_calendar_booking: a second booking of a booked call is queued naming its appointment'
);
SELECT guard.pin_company(1);
CREATE TEMPORARY TABLE lonely_booking AS
SELECT * FROM guard.reconcile_calendar_booking(NULL, 'uid-lonely', 'booked', NULL, NULL);
SELECT results_eq(
    $$SELECT r.action, i.company_id, i.details ->> 'problem'
      FROM lonely_booking AS r
      INNER JOIN guard.review_items AS i ON i.id = r.review_item_id$$,
    $$VALUES ('queued', 1::bigint, 'call_unknown')$$,
    'reconcile_calendar_booking: an unknown call''s booking from a calendar of every company is '
    'queued for the session''s tenant'
);
SELECT set_config('booking_guard.company_id', '', TRUE);

SELECT * FROM finish();
ROLLBACK;
