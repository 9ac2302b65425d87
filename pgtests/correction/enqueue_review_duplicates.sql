-- guard.enqueue_review's duplicates: a duplicate returns the open item of its own call and
-- reason, not the call's item of another reason; a problem without a call is a duplicate of the
-- call-less item of its own appointment and reason, not of another appointment's, nor of a call's
-- item on the same appointment.
BEGIN;
SELECT plan(7);

INSERT INTO companies (id, name) VALUES (1201, 'queue');

CREATE TEMP TABLE item AS
SELECT
    guard.enqueue_review(1201, 12001, NULL, 'validation_failure') AS call_validation,
    guard.enqueue_review(1201, 12001, NULL, 'other') AS call_other,
    guard.enqueue_review(1201, NULL, 12001, 'other') AS appointment_x,
    guard.enqueue_review(1201, NULL, 12002, 'other') AS appointment_y,
    guard.enqueue_review(1201, 12009, 12003, 'other') AS call_on_appointment_z;

SELECT is(
    (SELECT count(DISTINCT v) FROM item, unnest(ARRAY[call_validation, call_other, appointment_x, appointment_y, call_on_appointment_z]) AS v),
    5::bigint,
    'five distinct problems are five items'
);
SELECT is(
    guard.enqueue_review(1201, 12001, NULL, 'validation_failure'),
    (SELECT call_validation FROM item),
    'a duplicate of the call''s first reason returns that item'
);
SELECT is(
    guard.enqueue_review(1201, 12001, NULL, 'other'),
    (SELECT call_other FROM item),
    'a duplicate of the call''s second reason returns that item, not the first'
);
SELECT is(
    guard.enqueue_review(1201, NULL, 12001, 'other'),
    (SELECT appointment_x FROM item),
    'a call-less duplicate returns its own appointment''s item'
);
SELECT is(
    guard.enqueue_review(1201, NULL, 12002, 'other'),
    (SELECT appointment_y FROM item),
    'and for the other appointment that one''s'
);
SELECT isnt(
    guard.enqueue_review(1201, NULL, 12003, 'other'),
    (SELECT call_on_appointment_z FROM item),
    'a call-less problem is not a duplicate of a call''s item on the same appointment'
);
SELECT is(
    (
        SELECT count(*) FROM guard.review_items
        WHERE company_id = 1201
    ),
    6::bigint,
    'the duplicates added no item; the call-less problem on the third appointment one'
);

SELECT * FROM finish();
ROLLBACK;
