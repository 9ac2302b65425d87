-- The booking journal: begin/complete/fail refuse bad input without writing, a call has at most
-- one unsettled attempt, a booked call returns its booking, tenants are checked, and an attempt
-- past its timeout is detected and queued for review (priority 0) with an alert by reconcile.
BEGIN;
SELECT plan(28);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id) SELECT
    g,
    CASE WHEN g = 4 THEN 2 ELSE 1 END,
    'c' || g
FROM generate_series(1, 4) AS g;

-- bad writes are refused, and nothing is written
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking_attempt(NULL, 7)', '22004', NULL, 'begin refuses a NULL call'
);
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking_attempt(424242, 7)', 'P0002', 'call 424242 does not exist',
    'begin refuses an unknown call'
);
SELECT guard.pin_company(2);
SELECT throws_ok(
    'SELECT * FROM guard.begin_booking_attempt(1, 7)', '42501', NULL,
    'begin refuses a call of another tenant than the session''s'
);
SELECT set_config('booking_guard.company_id', '', TRUE);
SELECT is((SELECT count(*)::int FROM guard.booking_attempts), 0, 'none of them wrote an attempt');

-- a started attempt, and a second one for the same call
CREATE TEMPORARY TABLE first_attempt AS
SELECT * FROM guard.begin_booking_attempt(1, 7);
SELECT results_eq(
    $$SELECT a.outcome, b.state, b.service_id, b.started_by = session_user, b.idempotency_key ~ '^[0-9a-f-]{36}$'
      FROM first_attempt AS a JOIN guard.booking_attempts AS b ON b.idempotency_key = a.idempotency_key$$,
    $$VALUES ('started', 'calling', 7::bigint, TRUE, TRUE)$$,
    'begin commits an attempt in state calling with a fresh key, the service and who started it'
);
SELECT results_eq(
    $$SELECT outcome, idempotency_key FROM guard.begin_booking_attempt(1, 7)$$,
    $$SELECT 'in_flight'::text, idempotency_key FROM first_attempt$$,
    'a second attempt while one is calling is refused as in_flight, naming the first'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key)
      VALUES (1, 1, 7, 'by-hand')$$,
    '23505', NULL, 'a second unsettled attempt for a call cannot be written by hand either'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, finished_at)
      VALUES (1, 2, 7, 'by-hand', 'booked', now())$$,
    '23514', NULL, 'a booked attempt must name its appointment and booking uid'
);

-- complete: only with an active appointment of the attempt's call carrying the uid
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES
(1, 1, 1, 'uid-1'), (2, 1, 2, 'uid-2');
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt((SELECT idempotency_key FROM first_attempt), 2, 'uid-2')$$,
    '23503', NULL, 'complete refuses an appointment of another call'
);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt((SELECT idempotency_key FROM first_attempt), NULL, 'uid-1')$$,
    '22004', NULL, 'complete refuses NULLs'
);
SELECT is(
    guard.complete_booking_attempt((SELECT idempotency_key FROM first_attempt), 1, 'uid-1'),
    'booked', 'complete closes the attempt as booked'
);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt((SELECT idempotency_key FROM first_attempt), 1, 'uid-1')$$,
    '55000', NULL, 'an attempt is closed once'
);
SELECT results_eq(
    $$SELECT outcome, appointment_id, booking_uid FROM guard.begin_booking_attempt(1, 7)$$,
    $$VALUES ('already_booked', 1::bigint, 'uid-1')$$,
    'after a success, begin returns the existing booking and starts nothing'
);

-- fail: the rollback path with the key
CREATE TEMPORARY TABLE third_attempt AS
SELECT * FROM guard.begin_booking_attempt(3, 7);
SELECT throws_ok(
    $$SELECT guard.fail_booking_attempt((SELECT idempotency_key FROM third_attempt), 'other', '"a string"')$$,
    '22023', NULL, 'fail refuses a context that is not a JSON object'
);
CREATE TEMPORARY TABLE third_failed AS
SELECT guard.fail_booking_attempt(t.idempotency_key, 'calendar_booking_failure', '{"error": "E"}') AS item
FROM third_attempt AS t;
SELECT results_eq(
    $$SELECT r.reason, r.details ->> 'idempotency_key' = t.idempotency_key, b.state, c.session_outcome
      FROM third_attempt AS t
      CROSS JOIN third_failed AS f
      JOIN guard.review_items AS r ON r.id = f.item
      JOIN guard.booking_attempts AS b ON b.idempotency_key = t.idempotency_key
      JOIN calls AS c ON c.id = b.call_id$$,
    $$VALUES ('calendar_booking_failure', TRUE, 'failed', 'creation_failed')$$,
    'fail closes the attempt and rolls the call back with a review item carrying the key'
);

-- fail with {"queued": true}: the breaker refused the call (the calendar was not asked), so the
-- attempt is settled as queued, apart from the failed ones; the rollback path is the same
INSERT INTO calls (id, company_id, retell_call_id) VALUES (5, 1, 'c5'), (6, 1, 'c6');
SELECT guard.fail_booking_attempt(b.idempotency_key, 'calendar_booking_failure', c.context::jsonb)
FROM (VALUES (5, '{"queued": true, "circuit_state": "open"}'), (6, '{"queued": "true"}'))
    AS c (call_id, context)
CROSS JOIN LATERAL guard.begin_booking_attempt(c.call_id, 7) AS b;
SELECT results_eq(
    $$SELECT b.call_id, b.state, b.failure_reason, b.finished_at IS NOT NULL, c.session_outcome,
             (SELECT r.reason FROM guard.review_items AS r WHERE r.call_id = b.call_id)
      FROM guard.booking_attempts AS b JOIN calls AS c ON c.id = b.call_id
      WHERE b.call_id IN (5, 6) ORDER BY b.call_id$$,
    $$VALUES (5::bigint, 'queued', 'calendar_booking_failure', TRUE, 'creation_failed',
              'calendar_booking_failure'),
             (6::bigint, 'failed', 'calendar_booking_failure', TRUE, 'creation_failed',
              'calendar_booking_failure')$$,
    'fail with queued true settles the attempt as queued; anything but JSON true (the string) as failed'
);
SELECT throws_ok(
    $$UPDATE guard.booking_attempts SET state = 'queue' WHERE call_id = 5$$, '23514', NULL,
    'the journal takes no state beside its six'
);

-- an existing bad row: an attempt still calling long after its timeout
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (2, 4, 9, 'stale-key', now() - interval '1 hour');
SELECT results_eq(
    $$SELECT check_id, entity_id = (SELECT id FROM guard.booking_attempts WHERE idempotency_key = 'stale-key'),
             call_id, detail ->> 'idempotency_key'
      FROM guard.check_booking_outcome_unknown$$,
    $$VALUES ('booking_outcome_unknown', TRUE, 4::bigint, 'stale-key')$$,
    'detection reports the attempt past its timeout (and only it)'
);
SELECT throws_ok(
    'SELECT * FROM guard.unsettled_booking_attempts(NULL)', '22023', NULL,
    'unsettled_booking_attempts refuses a NULL limit'
);
SELECT guard.pin_company(1);
SELECT is(
    (SELECT count(*)::int FROM guard.unsettled_booking_attempts(10)), 0,
    'a session with a tenant sees only its own unsettled attempts'
);
SELECT set_config('booking_guard.company_id', '', TRUE);
SELECT results_eq(
    $$SELECT outcome FROM guard.begin_booking_attempt(4, 9)$$,
    $$VALUES ('outcome_unknown')$$,
    'a new attempt for its call is refused while its outcome is unknown'
);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'booking_outcome_unknown'$$,
    ARRAY[1], 'reconcile resolves it'
);
SELECT results_eq(
    $$SELECT r.company_id, r.priority::int, r.details ->> 'idempotency_key', (r.details ->> 'service_id')::int, b.state
      FROM guard.review_items AS r JOIN guard.booking_attempts AS b ON b.call_id = r.call_id
      WHERE r.reason = 'booking_outcome_unknown'$$,
    $$VALUES (2::bigint, 0, 'stale-key', 9, 'unknown')$$,
    'into a review item booking_outcome_unknown of priority 0 with key and service; the attempt is unknown'
);
SELECT ok(
    (
        SELECT
            r.priority < all(
                SELECT o.priority FROM guard.review_items AS o
                WHERE o.reason <> 'booking_outcome_unknown'
            )
        FROM guard.review_items AS r
        WHERE r.reason = 'booking_outcome_unknown'
    ),
    'it comes before every other review item'
);
SELECT results_eq(
    $$SELECT severity, entity_type, details ->> 'idempotency_key', (details ->> 'call_id')::int
      FROM guard.alerts WHERE check_id = 'booking_outcome_unknown' AND status = 'open'$$,
    $$VALUES ('critical', 'booking_attempt', 'stale-key', 4)$$,
    'and an alert'
);

-- a person settles it by hand and closes the review item: reconcile closes the attempt
SELECT guard.review_close(
    (
        SELECT r.id FROM guard.review_items AS r
        WHERE r.reason = 'booking_outcome_unknown'
    ),
    'ann', 'resolved', 'booked by phone'
);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'close_reviewed_attempt'$$,
    ARRAY[1], 'reconcile closes an unknown attempt whose review item a person closed'
);
SELECT results_eq(
    $$SELECT b.state, b.failure_reason, (SELECT a.status FROM guard.alerts AS a WHERE a.check_id = 'booking_outcome_unknown'),
             (SELECT s.outcome FROM guard.begin_booking_attempt(4, 9) AS s)
      FROM guard.booking_attempts AS b
      WHERE b.idempotency_key = 'stale-key'$$,
    $$VALUES ('failed', 'settled in review by ann', 'resolved', 'started')$$,
    'as failed, naming the reviewer; its alert is resolved and the call can be booked again'
);

-- the application role reaches the journal only through the functions
SET LOCAL ROLE guard_app;
SELECT throws_ok(
    'SELECT count(*) FROM guard.booking_attempts', '42501', NULL,
    'the application cannot read or write the journal directly'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
