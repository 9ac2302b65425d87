-- I4 at commit: a call inserted already claiming a booking (outcome appointment_booked, no
-- appointment yet) is queued for detection (guard.detection_queue) like an update's claim, and the
-- drain finds it once its grace period is over; an everyday new call queues nothing and records
-- no flag check (the claim trigger's WHEN clause keeps it out).
BEGIN;
SELECT plan(5);

INSERT INTO companies (id, name) VALUES (1, 'A');
DELETE FROM guard.detection_queue;

-- the everyday new call
INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome)
VALUES (16301, 1, 'c16301', 'inbound', 'in_progress');
SELECT is_empty('SELECT FROM guard.detection_queue', 'an everyday new call is not queued');
SELECT is_empty(
    'SELECT FROM guard.flag_checks_at_commit WHERE 16301 = ANY (call_ids)',
    'and records no flag check'
);

-- a bad write: inserted claiming a booking it does not have, its claim past the grace period
INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome, created_at, updated_at)
VALUES (16302, 1, 'c16302', 'inbound', 'appointment_booked', now() - interval '10 minutes', now() - interval '10 minutes');
SELECT results_eq(
    'SELECT call_id FROM guard.detection_queue',
    ARRAY[16302::bigint],
    'a call inserted claiming a booking is queued for detection'
);

-- an existing bad row is detected: the drain runs its checks
SELECT is(guard.drain_detection_queue(10), 1, 'the drain takes the queued call');
SELECT results_eq(
    $$SELECT entity_id FROM guard.alerts WHERE check_id = 'booked_without_appointment' AND status = 'open'$$,
    ARRAY[16302::bigint],
    'and its phantom booking is alerted'
);

SELECT * FROM finish();
ROLLBACK;
