-- guard.validate_call_end counts only the call's own ACTIVE appointments: a cancelled or deleted
-- one, or one of another company linked to the call (an adopted database's cross-company link),
-- does not make a booked call consistent. Rows are written with the triggers bypassed, as an
-- adopted database has them. The flags are judged by detection's rule
-- (guard.call_flags_contradict), each term alone: with an active appointment made, linked, a
-- link time, booked and not failed; without one, no link status but unlinked or
-- creation_failed. A phantom booking is reported once, as such. And an attempt of unknown
-- outcome is as unsettled as one calling.
BEGIN;
SELECT plan(10);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, session_outcome, appointment_made, appointment_link_status,
    appointment_linked_at, direction, customer_link_status
)
SELECT
    g.id,
    1,
    'c' || g.id,
    'appointment_booked',
    TRUE,
    'linked',
    now(),
    'inbound',
    'unlinked'
FROM generate_series(1, 3) AS g (id);
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, status, deleted_at)
VALUES
(1, 1, 1, 'uid-1', 'cancelled', NULL),
(2, 1, 2, 'uid-2', 'scheduled', now() - interval '1 hour'),
(3, 2, 3, 'uid-3', 'scheduled', NULL);
-- calls 4 and 5 have an active appointment of their own and flags that contradict it in one
-- term each: not linked (4), an outcome other than booked (5)
INSERT INTO calls (
    id, company_id, retell_call_id, session_outcome, appointment_made, appointment_link_status,
    appointment_linked_at, direction, customer_link_status
) VALUES
(4, 1, 'c4', 'appointment_booked', TRUE, 'unlinked', NULL, 'inbound', 'unlinked'),
(5, 1, 'c5', 'no_booking', TRUE, 'linked', now(), 'inbound', 'unlinked'),
(6, 1, 'c6', 'appointment_booked', TRUE, 'linked', now(), 'inbound', 'unlinked'),
(7, 1, 'c7', 'appointment_booked', TRUE, 'linked', NULL, 'inbound', 'unlinked'),
(8, 1, 'c8', 'information_only', FALSE, 'linked', now(), 'inbound', 'unlinked'),
(9, 1, 'c9', 'information_only', TRUE, 'linked', now(), 'inbound', 'unlinked');
-- call 7: every flag says booked but the link time is missing; call 8: no appointment, nothing
-- booked, yet linked; call 9: no appointment and made (a phantom, and its flags contradict)
-- call 6: booked and linked, but booking_failed left set by an earlier failed attempt
UPDATE calls SET booking_failed = TRUE
WHERE id = 6;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, status)
VALUES
(4, 1, 4, 'uid-4', 'scheduled'),
(5, 1, 5, 'uid-5', 'scheduled'),
(6, 1, 6, 'uid-6', 'scheduled'),
(7, 1, 7, 'uid-7', 'scheduled');
SET LOCAL session_replication_role = origin;

SELECT results_eq(
    $$SELECT problem, reaction FROM guard.validate_call_end(1)$$,
    $$VALUES ('booked_without_appointment', 'rollback_booking')$$,
    'validate_call_end: a booked call whose only appointment is cancelled has none'
);
SELECT results_eq(
    $$SELECT problem, reaction FROM guard.validate_call_end(2)$$,
    $$VALUES ('booked_without_appointment', 'rollback_booking')$$,
    'validate_call_end: a booked call whose only appointment is deleted has none'
);
SELECT results_eq(
    $$SELECT problem, reaction FROM guard.validate_call_end(3)$$,
    $$VALUES ('booked_without_appointment', 'rollback_booking')$$,
    'validate_call_end: another company''s appointment linked to the call is not the call''s'
);
SELECT results_eq(
    $$SELECT problem, reaction, details ->> 'appointment_link_status' FROM guard.validate_call_end(4)$$,
    $$VALUES ('flags_contradict_appointments', 'check_call', 'unlinked')$$,
    'validate_call_end: an appointment made but not linked contradicts the flags'
);
SELECT results_eq(
    $$SELECT problem, reaction, details ->> 'session_outcome' FROM guard.validate_call_end(5)$$,
    $$VALUES ('flags_contradict_appointments', 'check_call', 'no_booking')$$,
    'validate_call_end: an appointment with an outcome other than booked contradicts the flags'
);
SELECT results_eq(
    $$SELECT problem, reaction, details ->> 'booking_failed' FROM guard.validate_call_end(6)$$,
    $$VALUES ('flags_contradict_appointments', 'check_call', 'true')$$,
    'validate_call_end: a failure flag beside an active appointment contradicts the flags, and '
    'is no failure left unqueued (the call has its booking)'
);
SELECT results_eq(
    $$SELECT problem, details ->> 'appointment_linked_at' FROM guard.validate_call_end(7)$$,
    $$VALUES ('flags_contradict_appointments', NULL::text)$$,
    'validate_call_end: a booked, linked call without a link time contradicts the flags'
);
SELECT results_eq(
    $$SELECT problem, details -> 'appointment_ids' FROM guard.validate_call_end(8)$$,
    $$VALUES ('flags_contradict_appointments', '[]'::jsonb)$$,
    'validate_call_end: a call linked to no active appointment contradicts the flags'
);
SELECT results_eq(
    $$SELECT problem FROM guard.validate_call_end(9)$$,
    $$VALUES ('booked_without_appointment')$$,
    'validate_call_end: a phantom booking is reported once, not as a contradiction too'
);

-- an attempt whose outcome nobody knows is as unsettled as one still calling the calendar
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state)
VALUES (1, 1, 9, 'unknown-1', 'unknown');
SELECT results_eq(
    $$SELECT problem, reaction, details ->> 'state' FROM guard.validate_call_end(1) LIMIT 1$$,
    $$VALUES ('booking_attempt_unsettled', 'recover_attempts', 'unknown')$$,
    'validate_call_end: an attempt of unknown outcome is unsettled, named first'
);

SELECT * FROM finish();
ROLLBACK;
