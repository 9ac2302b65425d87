-- guard.complete_booking_attempt and guard.fail_booking_attempt on what the transitions test
-- (pgtests/booking/attempts_journal_transitions.sql) leaves out: each NULL argument alone is refused as NULL (22004), not by a later
-- check; the appointment a completion names must be the call's, of the call's company, and
-- active (an adopted database's appointment of another company linked to the call, a cancelled
-- or deleted one: 23503); completing or failing one attempt leaves every other attempt alone,
-- those begun in the same transaction too (they share created_at); a failure given a NULL
-- context still names its attempt's key.
BEGIN;
SELECT plan(15);

INSERT INTO companies (id, name) VALUES (1081, 'booking'), (1082, 'other');
SELECT pgtap_setup.company_calls(1081, 10801, 10806, 'b');

CREATE FUNCTION pg_temp.begun(call_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT b.idempotency_key FROM guard.begin_booking_attempt(call_id, 7) AS b
$$;
CREATE TEMP TABLE attempt_keys AS
SELECT
    c.id AS call_id,
    pg_temp.begun(c.id) AS idempotency_key
FROM calls AS c
WHERE c.id BETWEEN 10801 AND 10806;

INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id)
VALUES (10801, 1081, 10801, 'uid-10801'), (10804, 1081, 10804, 'uid-10804');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, status, deleted_at)
VALUES
(10803, 1081, 10803, 'uid-10803', 'cancelled', NULL),
(10813, 1081, 10803, 'uid-10813', 'confirmed', now());
-- another company's appointment linked to the call, as an adopted database may hold it
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id)
VALUES (10802, 1082, 10802, 'uid-10802');
SET LOCAL session_replication_role = origin;

SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt(NULL, 10801, 'uid-10801')$$,
    '22004', NULL, 'complete: a NULL key is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt(
        (SELECT idempotency_key FROM attempt_keys WHERE call_id = 10801), NULL, 'uid-10801'
    )$$,
    '22004', NULL, 'complete: a NULL appointment is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt(
        (SELECT idempotency_key FROM attempt_keys WHERE call_id = 10801), 10801, NULL
    )$$,
    '22004', NULL, 'complete: a NULL booking uid is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.fail_booking_attempt(NULL, 'calendar_booking_failure')$$,
    '22004', NULL, 'fail: a NULL key is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.fail_booking_attempt(
        (SELECT idempotency_key FROM attempt_keys WHERE call_id = 10801), NULL
    )$$,
    '22004', NULL, 'fail: a NULL reason is refused as NULL'
);

SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt(
        (SELECT idempotency_key FROM attempt_keys WHERE call_id = 10802), 10802, 'uid-10802'
    )$$,
    '23503', NULL, 'complete: another company''s appointment linked to the call is refused'
);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt(
        (SELECT idempotency_key FROM attempt_keys WHERE call_id = 10803), 10803, 'uid-10803'
    )$$,
    '23503', NULL, 'complete: a cancelled appointment is refused'
);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt(
        (SELECT idempotency_key FROM attempt_keys WHERE call_id = 10803), 10813, 'uid-10813'
    )$$,
    '23503', NULL, 'complete: a deleted appointment is refused'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.booking_attempts
        WHERE call_id BETWEEN 10801 AND 10806 AND state = 'calling' AND finished_at IS NULL
    ),
    6,
    'the refused calls changed no attempt'
);

SELECT ok(
    (
        SELECT count(DISTINCT created_at) = 1 FROM guard.booking_attempts
        WHERE call_id BETWEEN 10801 AND 10806
    ),
    'the six attempts were begun in one transaction: they share created_at'
);
SELECT is(
    guard.complete_booking_attempt(
        (
            SELECT idempotency_key FROM attempt_keys
            WHERE call_id = 10804
        ), 10804, 'uid-10804'
    ),
    'booked',
    'complete: the call''s own active appointment books the attempt'
);
SELECT is(
    guard.fail_booking_attempt(
        (
            SELECT idempotency_key FROM attempt_keys
            WHERE call_id = 10805
        ), 'calendar_booking_failure'
    ) IS NOT NULL,
    TRUE,
    'fail: the attempt of another call fails'
);
SELECT results_eq(
    $$SELECT call_id, state, finished_at IS NULL, appointment_id, failure_reason
      FROM guard.booking_attempts WHERE call_id BETWEEN 10801 AND 10806 ORDER BY call_id$$,
    $$VALUES
        (10801::bigint, 'calling'::text, TRUE, NULL::bigint, NULL::text),
        (10802, 'calling', TRUE, NULL, NULL),
        (10803, 'calling', TRUE, NULL, NULL),
        (10804, 'booked', FALSE, 10804, NULL),
        (10805, 'failed', FALSE, NULL, 'calendar_booking_failure'),
        (10806, 'calling', TRUE, NULL, NULL)$$,
    'each changed its own attempt only; the others begun with them are still calling'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.booking_attempts
        WHERE call_id BETWEEN 10801 AND 10806
    ),
    6,
    'no attempt was added or lost'
);

-- a context given as NULL is an empty one: the failure still names its key
SELECT guard.fail_booking_attempt(
    (
        SELECT idempotency_key FROM attempt_keys
        WHERE call_id = 10806
    ), 'calendar_booking_failure', NULL
);
SELECT is(
    (
        SELECT details ->> 'idempotency_key' FROM guard.alerts
        WHERE fingerprint = 'booking_rolled_back:call:10806'
    ),
    (
        SELECT idempotency_key FROM attempt_keys
        WHERE call_id = 10806
    ),
    'fail: with a NULL context the rollback''s alert still names the attempt''s key'
);

SELECT * FROM finish();
ROLLBACK;
