-- guard.validate_call_end: each problem a call can end with, in its order and with its
-- reaction; a consistent call returns nothing; NULL, unknown and other tenants' calls are refused.
BEGIN;
SELECT plan(12);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO services (id, company_id, name) VALUES (1, 1, 'cut');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome) VALUES
(1, 1, 'c1', NULL),
(2, 1, 'c2', 'no_booking'),
(3, 1, 'c3', NULL),
(4, 1, 'c4', 'appointment_booked'),
(5, 1, 'c5', 'no_booking'),
(6, 1, 'c6', 'creation_failed'),
(7, 1, 'c7', 'no_booking'),
(8, 2, 'c8', 'no_booking');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES (1, 1, 1, 'uid-1');

SELECT is_empty(
    $$SELECT * FROM guard.validate_call_end(1)$$,
    'a call booked through the database ends consistent (the flags were derived)'
);
SELECT is_empty(
    $$SELECT * FROM guard.validate_call_end(2)$$,
    'a call that ended without a booking and with an outcome ends consistent'
);
SELECT results_eq(
    $$SELECT problem, reaction FROM guard.validate_call_end(3)$$,
    $$VALUES ('outcome_missing', 'record_outcome')$$,
    'a call that ended without an outcome'
);
SELECT results_eq(
    $$SELECT problem, reaction, details ->> 'session_outcome' FROM guard.validate_call_end(4)$$,
    $$VALUES ('booked_without_appointment', 'rollback_booking', 'appointment_booked')$$,
    'booked without an appointment is a problem at call end, grace period or not'
);

INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key)
VALUES (1, 5, 1, 'key-5');
SELECT results_eq(
    $$SELECT problem, reaction, details ->> 'idempotency_key', details ->> 'state'
      FROM guard.validate_call_end(5)$$,
    $$VALUES ('booking_attempt_unsettled', 'recover_attempts', 'key-5', 'calling')$$,
    'an attempt still calling the calendar when the call ended'
);

UPDATE calls SET booking_failed = TRUE
WHERE id = 6;
SELECT results_eq(
    $$SELECT problem, reaction FROM guard.validate_call_end(6)$$,
    $$VALUES ('failure_not_queued', 'rollback_booking')$$,
    'a booking failure that nobody is asked to look at'
);
SELECT lives_ok(
    $$SELECT guard.rollback_booking(6, 'calendar_booking_failure')$$,
    'the documented reaction: rollback_booking'
);
SELECT is_empty(
    $$SELECT * FROM guard.validate_call_end(6)$$,
    'after the rollback the call ends consistent (failed, queued for a person)'
);

ALTER TABLE appointments DISABLE TRIGGER guard_appointments_sync_insert;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES (7, 1, 7, 'uid-7');
ALTER TABLE appointments ENABLE TRIGGER guard_appointments_sync_insert;
SELECT results_eq(
    $$SELECT problem, reaction, details -> 'appointment_ids' FROM guard.validate_call_end(7)$$,
    $$VALUES ('flags_contradict_appointments', 'check_call', '[7]'::jsonb)$$,
    'an active appointment the flags do not show (derivation bypassed)'
);

SELECT throws_ok(
    $$SELECT * FROM guard.validate_call_end(NULL)$$, '22004', 'validate_call_end needs a call id',
    'a NULL call is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.validate_call_end(424242)$$, 'P0002', 'call 424242 does not exist',
    'an unknown call is refused, not read as consistent'
);
SELECT guard.pin_company(2);
SELECT throws_ok(
    $$SELECT * FROM guard.validate_call_end(3)$$, '42501', NULL,
    'a session of another tenant may not validate the call'
);

SELECT * FROM finish();
ROLLBACK;
