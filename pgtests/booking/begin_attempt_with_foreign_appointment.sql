-- guard.begin_booking_attempt on an adopted database: an appointment of another company linked to
-- the call (a row the composite foreign key would refuse, written before it existed) does not
-- make the call already booked; the attempt starts. The call's own active appointment does.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1161, 'caller'), (1162, 'other');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (11601, 1161, 'b1'), (11602, 1161, 'b2');
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id)
VALUES (11601, 1162, 11601, 'retell_webhook', 'uid-foreign');
SET LOCAL session_replication_role = origin;
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id)
VALUES (11602, 1161, 11602, 'retell_webhook', 'uid-own');

SELECT results_eq(
    $$SELECT outcome, appointment_id, booking_uid FROM guard.begin_booking_attempt(11601, 7)$$,
    $$VALUES ('started', NULL::bigint, NULL::text)$$,
    'another company''s appointment on the call does not make it booked: the attempt starts'
);
SELECT is(
    (
        SELECT state FROM guard.booking_attempts
        WHERE call_id = 11601
    ),
    'calling',
    'and is in the journal, calling'
);
SELECT results_eq(
    $$SELECT outcome, appointment_id, booking_uid FROM guard.begin_booking_attempt(11602, 7)$$,
    $$VALUES ('already_booked', 11602::bigint, 'uid-own')$$,
    'the call''s own active appointment makes it already booked'
);

SELECT * FROM finish();
ROLLBACK;
