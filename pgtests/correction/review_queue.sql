-- Review queue: priority from the reason, one open item per call and reason, claim in priority
-- order, resolve/dismiss with who, when and a note, and the sweep.
BEGIN;
SELECT plan(13);

INSERT INTO companies (id, name) VALUES (1, 'A');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;
INSERT INTO calls (id, company_id, retell_call_id) SELECT
    g,
    1,
    'c' || g
FROM generate_series(1, 5) AS g;

SELECT guard.enqueue_review(1, 1, NULL, 'other');
SELECT guard.enqueue_review(1, 2, NULL, 'service_not_found');
SELECT guard.enqueue_review(1, 3, NULL, 'validation_failure');
SELECT guard.enqueue_review(1, 4, NULL, 'calendar_booking_failure');
SELECT guard.enqueue_review(1, 5, NULL, 'customer_creation_failure');

SELECT is(
    guard.enqueue_review(1, 3, NULL, 'validation_failure'),
    (
        SELECT id FROM guard.review_items
        WHERE call_id = 3
    ),
    'queueing the same call and reason again returns the open item'
);
SELECT is((SELECT count(*)::int FROM guard.review_items), 5, 'and adds nothing');

SELECT results_eq(
    $$SELECT call_id, priority::int FROM guard.review_claim('ann', 2) ORDER BY priority$$,
    $$VALUES (3::bigint, 1), (4::bigint, 2)$$,
    'claims come in priority order: validation failure, then calendar booking failure'
);
SELECT results_eq(
    $$SELECT call_id FROM guard.review_claim('bob', 10) ORDER BY priority$$,
    $$VALUES (5::bigint), (2::bigint), (1::bigint)$$,
    'a second reviewer gets the rest, never an item already claimed'
);
SELECT is_empty($$SELECT * FROM guard.review_claim('carl')$$, 'nothing left to claim');

SELECT results_eq(
    $$SELECT status, closed_by, note, closed_at IS NOT NULL
      FROM guard.review_close((SELECT id FROM guard.review_items WHERE call_id = 3), 'ann', 'resolved', 'rebooked by phone')$$,
    $$VALUES ('resolved', 'ann', 'rebooked by phone', TRUE)$$,
    'resolve records who, when and a note'
);
SELECT results_eq(
    $$SELECT status, false_positive
      FROM guard.review_close((SELECT id FROM guard.review_items WHERE call_id = 1), 'bob', 'dismissed', 'not a problem', TRUE)$$,
    $$VALUES ('dismissed', TRUE)$$,
    'dismiss as a false positive'
);
SELECT throws_ok(
    $$SELECT guard.review_close((SELECT id FROM guard.review_items WHERE call_id = 3), 'ann', 'resolved', 'again')$$,
    'P0002',
    NULL,
    'closing an item twice is an error'
);
SELECT throws_ok(
    $$SELECT guard.review_close((SELECT id FROM guard.review_items WHERE call_id = 2), 'ann', 'resolved', 'x', TRUE)$$,
    '22023',
    'only a dismissed item can be a false positive',
    'a resolved item cannot be a false positive'
);
SELECT lives_ok(
    $$SELECT guard.enqueue_review(1, 3, NULL, 'validation_failure')$$,
    'after resolution the same problem may be queued again'
);

-- The sweep resolves open items whose problem went away: call 6's booking happened after all.
-- (Call 4's item is claimed: a person has it, the sweep leaves it to them.)
INSERT INTO calls (id, company_id, retell_call_id) VALUES (6, 1, 'c6');
SELECT guard.enqueue_review(1, 6, NULL, 'calendar_booking_failure');
INSERT INTO appointments (company_id, call_id) VALUES (1, 6), (1, 4);
SELECT is(guard.review_sweep(), 1, 'the sweep resolves one item');
SELECT is(
    (
        SELECT status FROM guard.review_items
        WHERE call_id = 6
    ), 'resolved',
    'the booking failure whose call now has an appointment'
);
SELECT is(
    (
        SELECT status FROM guard.review_items
        WHERE call_id = 4
    ), 'claimed',
    'a claimed item is left to the person who claimed it'
);

SELECT * FROM finish();
ROLLBACK;
