-- guard.unsettled_booking_attempts takes a limit of 0 (a caller that wants none: nothing, no
-- error) and refuses a negative one or NULL.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state)
VALUES (1, 1, 9, 'unknown-1', 'unknown');

SELECT is_empty(
    'SELECT * FROM guard.unsettled_booking_attempts(0)',
    'unsettled_booking_attempts(0) lists nothing'
);
SELECT throws_ok(
    'SELECT * FROM guard.unsettled_booking_attempts(-1)', '22023', NULL,
    'unsettled_booking_attempts refuses a negative limit'
);
SELECT results_eq(
    'SELECT idempotency_key FROM guard.unsettled_booking_attempts(1)',
    $$VALUES ('unknown-1')$$,
    'unsettled_booking_attempts(1) lists the one'
);

SELECT * FROM finish();
ROLLBACK;
