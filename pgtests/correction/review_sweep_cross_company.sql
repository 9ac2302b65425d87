-- guard.review_sweep resolves only problems that went away within the item's company: a booking
-- failure is not gone because another company's appointment is linked to the call (an adopted
-- database's cross-company link), and an appointment of one company linked to another
-- company's call is not fixed because its company has other calls. Rows are written with the
-- triggers bypassed, as an adopted database has them.
BEGIN;
SELECT plan(2);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id) VALUES
(1, 1, 'c1'), (2, 2, 'c2'), (3, 1, 'c3');
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, status) VALUES
(1011, 2, 1, 'scheduled'),  -- company 2's appointment on company 1's call 1
(1012, 1, 2, 'scheduled');  -- company 1's appointment on company 2's call 2
SET LOCAL session_replication_role = origin;
SELECT guard.enqueue_review(1, 1, NULL, 'calendar_booking_failure');
SELECT guard.enqueue_review(1, NULL, 1012, 'other');

SELECT is(guard.review_sweep(), 0, 'review_sweep resolves neither');
SELECT results_eq(
    $$SELECT reason, status FROM guard.review_items WHERE company_id = 1 ORDER BY reason$$,
    $$VALUES ('calendar_booking_failure', 'open'), ('other', 'open')$$,
    'review_sweep leaves both items open'
);

SELECT * FROM finish();
ROLLBACK;
