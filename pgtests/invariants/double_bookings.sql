-- I10 (rule I10_double_booking): a call booked twice (double_booked_call) and a customer booked
-- twice at overlapping times (customer_double_booked) are detected, by the views and by a
-- detection pass; cancelled and soft-deleted appointments, appointments without a customer or a
-- start, and touching times ([10:00, 10:30) then [10:30, 11:00)) are not double bookings.
BEGIN;
SELECT plan(9);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO customers (id, company_id, name) VALUES (1, 1, 'Ann'), (2, 1, 'Bob');
INSERT INTO calls (id, company_id, retell_call_id, direction)
SELECT
    g.id,
    1,
    'c' || g.id,
    'inbound'
FROM generate_series(1, 9) AS g (id);
INSERT INTO appointments (
    id, company_id, call_id, customer_id, calcom_v2_booking_id, status, starts_at, ends_at,
    deleted_at
) VALUES
-- call 1: booked twice
(11, 1, 1, NULL, 'u11', 'scheduled', NULL, NULL, NULL),
(12, 1, 1, NULL, 'u12', 'scheduled', NULL, NULL, NULL),
-- call 2: one active, one cancelled, one soft-deleted
(21, 1, 2, NULL, 'u21', 'scheduled', NULL, NULL, NULL),
(22, 1, 2, NULL, 'u22', 'cancelled', NULL, NULL, NULL),
(23, 1, 2, NULL, 'u23', 'scheduled', NULL, NULL, now()),
-- customer 1: 10:00-10:30 (call 3), touching 10:30-11:00 (call 4), overlapping 10:15-10:45 (call 5)
(31, 1, 3, 1, 'u31', 'scheduled', '2026-12-01 10:00Z', '2026-12-01 10:30Z', NULL),
(41, 1, 4, 1, 'u41', 'scheduled', '2026-12-01 10:30Z', '2026-12-01 11:00Z', NULL),
(42, 1, 5, 1, 'u42', 'scheduled', '2026-12-01 10:15Z', '2026-12-01 10:45Z', NULL),
-- customer 2: two at the same start, no end (call 6, 7); a cancelled one at that start too (call 8)
(51, 1, 6, 2, 'u51', 'scheduled', '2026-12-02 09:00Z', NULL, NULL),
(52, 1, 7, 2, 'u52', 'scheduled', '2026-12-02 09:00Z', NULL, NULL),
(53, 1, 8, 2, 'u53', 'cancelled', '2026-12-02 09:00Z', NULL, NULL),
-- no customer: the same time twice is no one's double booking (call 9)
(61, 1, 9, NULL, 'u61', 'scheduled', '2026-12-02 09:00Z', NULL, NULL);
INSERT INTO appointments (id, company_id, call_id, customer_id, status, starts_at)
VALUES (62, 1, NULL, NULL, 'scheduled', '2026-12-02 09:00Z');

SELECT results_eq(
    $$SELECT entity_id FROM guard.check_double_booked_call ORDER BY entity_id$$,
    $$VALUES (12::bigint)$$,
    'the second active appointment of call 1 is its double booking; cancelled and deleted ones do not count'
);
SELECT is(
    (SELECT (detail ->> 'first_appointment_id')::bigint FROM guard.check_double_booked_call),
    11::bigint,
    'the row names the appointment it repeats'
);
SELECT results_eq(
    $$SELECT entity_id FROM guard.check_customer_double_booked ORDER BY entity_id$$,
    $$VALUES (42::bigint), (52::bigint)$$,
    'overlapping (10:15-10:45 over 10:00-10:30) and same-start appointments of one customer'
);
SELECT is(
    (
        SELECT (detail ->> 'overlaps_appointment_id')::bigint
        FROM guard.check_customer_double_booked
        WHERE entity_id = 42
    ),
    31::bigint,
    'the row names the earliest appointment it overlaps'
);
SELECT is_empty(
    $$SELECT FROM guard.check_customer_double_booked WHERE entity_id IN (41, 53, 61, 62)$$,
    'touching times, a cancelled appointment and appointments without a customer are not double bookings'
);

SELECT results_eq(
    $$SELECT check_id, offending FROM guard.run_detection('-infinity', NULL)
      WHERE check_id IN ('double_booked_call', 'customer_double_booked') ORDER BY check_id$$,
    $$VALUES ('customer_double_booked'::text, 2), ('double_booked_call'::text, 1)$$,
    'a detection pass finds every double booking'
);
SELECT results_eq(
    $$SELECT check_id, entity_id FROM guard.alerts
      WHERE check_id IN ('double_booked_call', 'customer_double_booked') AND status = 'open'
      ORDER BY check_id, entity_id$$,
    $$VALUES ('customer_double_booked'::text, 42::bigint), ('customer_double_booked', 52),
      ('double_booked_call', 12)$$,
    'one open alert per double booking'
);

-- cancelling the repeat resolves its alert at the next pass
UPDATE appointments SET status = 'cancelled'
WHERE id IN (12, 52);
SELECT results_eq(
    $$SELECT check_id, offending FROM guard.run_detection('-infinity', NULL)
      WHERE check_id IN ('double_booked_call', 'customer_double_booked') ORDER BY check_id$$,
    $$VALUES ('customer_double_booked'::text, 1), ('double_booked_call'::text, 0)$$,
    'a cancelled repeat is no double booking any more'
);
SELECT results_eq(
    $$SELECT entity_id FROM guard.alerts
      WHERE check_id IN ('double_booked_call', 'customer_double_booked') AND status = 'open' ORDER BY entity_id$$,
    $$VALUES (42::bigint)$$,
    'the alerts of the cancelled repeats are resolved'
);

SELECT * FROM finish();
ROLLBACK;
