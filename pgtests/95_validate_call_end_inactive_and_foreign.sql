-- guard.validate_call_end counts only the call's own ACTIVE appointments: a cancelled or deleted
-- one, or one of another company linked to the call (an adopted database's cross-company link),
-- does not make a booked call consistent. Rows are written with the triggers bypassed, as an
-- adopted database has them. With an active appointment every booking flag must agree, each
-- term alone; and an attempt of unknown outcome is as unsettled as one calling.
BEGIN;
SELECT plan(7);

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
(6, 1, 'c6', 'appointment_booked', TRUE, 'linked', now(), 'inbound', 'unlinked');
-- call 6: booked and linked, but booking_failed left set by an earlier failed attempt
UPDATE calls SET booking_failed = TRUE
WHERE id = 6;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, status)
VALUES (4, 1, 4, 'uid-4', 'scheduled'), (5, 1, 5, 'uid-5', 'scheduled'), (6, 1, 6, 'uid-6', 'scheduled');
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
SELECT is_empty(
    $$SELECT problem FROM guard.validate_call_end(6) WHERE problem = 'failure_not_queued'$$,
    'validate_call_end: a failure flag on a call with an active appointment is no failure left '
    'unqueued (the call has its booking; detection reports the flag)'
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
