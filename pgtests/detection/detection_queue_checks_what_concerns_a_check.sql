-- A drain checks one by one only the calls a check could act on (guard.calls_to_check): those a
-- shipped check's view finds, those with an open alert (resolved once fixed) and those with an
-- appointment. A clean call (ended without a booking, no alert, no appointment) is removed from
-- the queue without a check_call of its own, which a flood of such calls could not afford: no
-- per-call advisory lock is taken for it (guard.run_checks takes one per call it checks). With
-- an own check enabled every call is checked one by one, as before.
BEGIN;
SELECT plan(8);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, status, created_at)
SELECT
    g,
    1,
    'c' || g,
    'inbound',
    'unlinked',
    'ongoing',
    now() - interval '5 min'
FROM generate_series(1, 5) AS g;
-- call 3: a phantom past its grace, alerted by a first drain
UPDATE calls SET status = 'ended', session_outcome = 'appointment_booked', updated_at = now() - interval '31 s'
WHERE id = 3;
SELECT is(guard.drain_detection_queue(), 1, 'the phantom is drained');
SELECT is(
    (
        SELECT status FROM guard.alerts
        WHERE check_id = 'booked_without_appointment' AND entity_id = 3
    ),
    'open', 'and alerted'
);
-- call 4 has a cancelled appointment (nothing any check finds)
INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id)
VALUES (4, 1, 4, 'retell_webhook', 'cancelled', 'uid-4');

-- Call 1 ends without a booking (clean), call 2 with an outcome outside the known set, call 3
-- is fixed (the application corrects its outcome), call 4 ends, call 5 ends clean too.
UPDATE calls SET status = 'ended', session_outcome = 'information_only'
WHERE id IN (1, 5);
UPDATE calls SET status = 'ended', session_outcome = 'appointment_bookd'
WHERE id = 2;
UPDATE calls SET session_outcome = 'information_only'
WHERE id = 3;
UPDATE calls SET status = 'ended', session_outcome = 'information_only'
WHERE id = 4;

SELECT is(
    guard.calls_to_check(ARRAY[1, 2, 3, 4, 5]::bigint[]), ARRAY[2, 3, 4]::bigint[],
    'the calls a check could act on: a finding, an open alert, an appointment'
);
SELECT is(guard.drain_detection_queue(), 5, 'one drain takes the five queued calls');
SELECT is(
    (
        SELECT count(*) FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid()
    ),
    3::bigint,
    'only those three were checked one by one (a call''s check holds its advisory lock until commit)'
);
SELECT results_eq(
    $$SELECT check_id, entity_id, status FROM guard.alerts WHERE entity_type = 'call' ORDER BY entity_id, check_id$$,
    $$VALUES
        ('unknown_value'::text, 2::bigint, 'open'::text),
        ('booked_without_appointment'::text, 3::bigint, 'resolved'::text)$$,
    'the unknown outcome is alerted, the fixed phantom''s alert resolved; the clean calls raise nothing'
);
SELECT is((SELECT count(*) FROM guard.detection_queue), 0::bigint, 'every row was removed');

-- An own check (its view runs sandboxed under check_call's budget): every call, one by one.
INSERT INTO guard.rules (id, severity, description, remedy)
VALUES ('own_rule', 'low', 'A rule of the DBA''s own.', 'report');
SELECT pgtap_setup.appointment_check('mine', 'own_rule');
SELECT guard.register_check('mine', 'own_rule', 'check_mine', 'low', 'x');
SELECT is(
    guard.calls_to_check(ARRAY[1, 2, 5]::bigint[]), ARRAY[1, 2, 5]::bigint[],
    'with an own check enabled every call is checked one by one'
);

SELECT * FROM finish();
ROLLBACK;
