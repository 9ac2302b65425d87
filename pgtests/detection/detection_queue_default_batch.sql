-- guard.drain_detection_queue without a batch size takes detection_queue_batch rows a drain, the
-- oldest queued first; a drain given a size takes that many. A drain that took every due row at
-- once would hold the queue's row locks, and run check_call, for however many calls piled up.
-- A queued call deleted since is skipped, its open alert left to the windowed pass, while other
-- calls exist. A drain that took a whole batch says so in booking_guard.run_again, for the rest
-- of its transaction (pg_cron's run drains again at once: guard.cron_command); one that took
-- less does not.
BEGIN;
SELECT plan(9);

INSERT INTO companies (id, name) VALUES (1171, 'queue');
INSERT INTO calls (id, company_id, retell_call_id, created_at)
SELECT
    g,
    1171,
    'q' || g,
    now() - interval '5 min'
FROM generate_series(11701, 11705) AS g;
DELETE FROM guard.detection_queue;
INSERT INTO guard.detection_queue (call_id, due_at)
SELECT
    g,
    now() - interval '1 min'
FROM generate_series(11701, 11705) AS g
ORDER BY g;
UPDATE guard.settings SET value = '2'
WHERE key = 'detection_queue_batch';

SELECT is(guard.drain_detection_queue(), 2, 'a drain without a size takes detection_queue_batch');
SELECT results_eq(
    'SELECT call_id FROM guard.detection_queue ORDER BY id',
    ARRAY[11703::bigint, 11704, 11705],
    'the oldest two were taken'
);
SELECT is(
    current_setting('booking_guard.run_again', TRUE), 'on',
    'a drain that took a whole batch asks to be run again'
);
SELECT is(guard.drain_detection_queue(3), 3, 'a drain given a size takes that many');
SELECT is_empty('SELECT FROM guard.detection_queue', 'the queue is empty');

-- Call 11709 was deleted after it was queued; its phantom alert is still open.
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
VALUES (
    'booked_without_appointment:call:11709', 'booked_without_appointment', 1171, 'call', 11709,
    'high', 'booked without an appointment'
);
INSERT INTO guard.detection_queue (call_id, due_at) VALUES (11709, now() - interval '1 min');
SELECT set_config('booking_guard.run_again', '', TRUE);
SELECT is(guard.drain_detection_queue(), 1, 'the deleted call''s row is taken');
SELECT is(
    current_setting('booking_guard.run_again', TRUE), '',
    'a drain that took less than a batch does not ask to be run again'
);
SELECT is(guard.drain_detection_queue(), 0, 'nothing is left due');
SELECT results_eq(
    $$SELECT status, resolved_at FROM guard.alerts WHERE entity_id = 11709$$,
    $$VALUES ('open', NULL::timestamptz)$$,
    'its alert is not touched: the drain skipped the call'
);

SELECT * FROM finish();
ROLLBACK;
