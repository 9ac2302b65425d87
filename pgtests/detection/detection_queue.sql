-- Detection at commit (guard.detection_queue, guard.drain_detection_queue): the calls trigger of
-- a flag write queues a call written without an active appointment (the end of a call that did
-- not book, a claimed booking without its appointment) and nothing else; a drain checks the due
-- calls as check_call does, removes their rows, queues a claim still inside its grace period
-- (30 s from the call's last write) again for the end of it, and skips a deleted call. A bad row
-- that no write queued (a legacy load) is the windowed pass's. now() is fixed inside this
-- transaction, so a claim can sit exactly on the boundary.
BEGIN;
SELECT plan(18);

SELECT is(guard.setting('grace_period_seconds'), '30'::jsonb, 'the grace period defaults to 30 s');

INSERT INTO companies (id, name) VALUES (1, 'A');
-- calls that started five minutes ago (the grace period counts from the later of created_at and
-- updated_at)
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, status, session_outcome, created_at)
SELECT
    g,
    1,
    'c' || g,
    'inbound',
    'unlinked',
    'ongoing',
    NULL,
    now() - interval '5 min'
FROM generate_series(1, 7) AS g;
-- call 2 books through the triggers (its flags derived from the appointment)
INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id)
VALUES (2, 1, 2, 'retell_webhook', 'scheduled', 'uid-2');
-- a legacy phantom, loaded with the triggers off ten minutes ago
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, status, session_outcome,
    appointment_made, created_at, updated_at
) VALUES (
    9, 1, 'c9', 'inbound', 'unlinked', 'ended', 'appointment_booked', FALSE,
    now() - interval '10 min', now() - interval '10 min'
);
SET LOCAL session_replication_role = origin;

SELECT is(
    (SELECT count(*) FROM guard.detection_queue), 0::bigint,
    'new calls, a booking and a legacy load queue nothing'
);

-- The call ends booked without an appointment, its claim written 31 s ago (past the grace);
-- call 3 ends without a booking; call 2 (booked) restates its flags, then marks itself failed
-- (judged at commit, not queued: it has its appointment); call 4 is
-- written with a NULL outcome and a NULL status; a write that rolls back queues nothing.
UPDATE calls SET status = 'ended', session_outcome = 'appointment_booked', updated_at = now() - interval '31 s'
WHERE id = 1;
UPDATE calls SET status = 'ended', session_outcome = 'no_booking'
WHERE id = 3;
UPDATE calls SET session_outcome = 'appointment_booked', appointment_made = TRUE
WHERE id = 2;
UPDATE calls SET booking_failed = TRUE, status = 'ended'
WHERE id = 2;
UPDATE calls SET session_outcome = 'information_only'
WHERE id = 4;
UPDATE calls SET session_outcome = NULL, status = NULL
WHERE id = 4;
SELECT throws_ok(
    'DO $do$ BEGIN UPDATE calls SET session_outcome = ''appointment_booked'' WHERE id = 7; '
    'RAISE EXCEPTION ''the application gives up''; END $do$',
    'P0001', 'the application gives up',
    'a transaction that wrote a claim and rolled back: its queue row is gone with it'
);
-- a status update writes no flag column: not the end of a call to the trigger
UPDATE calls SET status = 'ended'
WHERE id = 7;

SELECT results_eq(
    'SELECT call_id, due_at = now() FROM guard.detection_queue ORDER BY id',
    $$VALUES (1::bigint, TRUE), (3::bigint, TRUE), (4::bigint, TRUE), (4::bigint, TRUE)$$,
    'a flag write of a call without an active appointment is queued, due at once (a NULL outcome '
    'too); a booked call''s, a rolled-back write and a status update are not'
);

SELECT is(guard.drain_detection_queue(), 3, 'one drain checks the three queued calls once each');
SELECT is(
    (SELECT count(*) FROM guard.detection_queue), 0::bigint,
    'the drain removed their rows: nothing queued again (no claim is inside its grace)'
);
SELECT results_eq(
    $$SELECT check_id, entity_id, status FROM guard.alerts WHERE entity_type = 'call' ORDER BY entity_id$$,
    $$VALUES ('booked_without_appointment'::text, 1::bigint, 'open'::text)$$,
    'the phantom booking is alerted; the call that ended without a booking and the NULL outcome are not'
);
SELECT is(
    (
        SELECT count(*) FROM guard.alerts
        WHERE entity_id = 9 AND entity_type = 'call'
    ), 0::bigint,
    'the legacy phantom no write queued is not the drain''s'
);
SELECT results_eq(
    $$SELECT offending FROM guard.detect() WHERE check_id = 'booked_without_appointment'$$,
    $$VALUES (2)$$,
    'the windowed pass finds the legacy phantom (and the queued one, already open)'
);

-- The grace boundary: call 5 claims exactly 30 s ago (inside), call 6 30 s and a millisecond ago.
UPDATE calls SET session_outcome = 'appointment_booked', updated_at = now() - interval '30 s'
WHERE id = 5;
UPDATE calls SET session_outcome = 'appointment_booked', updated_at = now() - interval '30.001 s'
WHERE id = 6;
SELECT is(guard.drain_detection_queue(), 2, 'both claims are checked at once');
SELECT set_eq(
    $$SELECT entity_id FROM guard.alerts WHERE check_id = 'booked_without_appointment' AND status = 'open'$$,
    ARRAY[1, 6, 9]::bigint[],
    'the claim past its grace period is alerted; the one exactly at its end is not yet'
);
SELECT results_eq(
    'SELECT call_id, due_at FROM guard.detection_queue',
    $$SELECT 5::bigint, now()$$,
    'the claim inside its grace is queued again, due when its grace period ends (its last write + 30 s)'
);

-- Not due yet: left; a batch bound; a deleted call.
DELETE FROM guard.detection_queue;
INSERT INTO guard.detection_queue (call_id, due_at) VALUES
(3, now() + interval '1 s'), (3, now()), (4, now()), (12345, now());
SELECT is(guard.drain_detection_queue(1), 1, 'a drain takes at most its batch');
SELECT is(guard.drain_detection_queue(10), 2, 'the next takes the rest that is due; a deleted call is skipped');
SELECT results_eq(
    'SELECT call_id FROM guard.detection_queue',
    $$VALUES (3::bigint)$$,
    'a row not due yet stays'
);

-- The application role queues through the trigger only: it may not read, remove or drain.
SET LOCAL ROLE guard_app;
SELECT throws_ok(
    'SELECT count(*) FROM guard.detection_queue', '42501', NULL,
    'the application cannot read the queue'
);
SELECT throws_ok(
    'SELECT guard.drain_detection_queue()', '42501', NULL,
    'the application cannot drain it'
);
RESET ROLE;
SELECT results_eq(
    $$SELECT schedule, interval_seconds, command FROM guard.jobs WHERE name = 'detect_queue'$$,
    $$VALUES ('15 seconds'::text, 60, 'SELECT guard.drain_detection_queue()'::text)$$,
    'the detect_queue job drains the queue every 15 s'
);

SELECT * FROM finish();
ROLLBACK;
