-- Application-role functions refuse what would do too much or nothing: NULL and unknown ids are
-- an error and write nothing; alert details are always a JSON object (a validated CHECK, and
-- rollback_booking wraps a context that is not an object).
BEGIN;
SELECT plan(17);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1'), (2, 1, 'c2'), (3, 2, 'c3');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id) VALUES
(1, 1, 1, 'uid-1'), (2, 2, 3, 'uid-2');

SELECT is(
    (
        SELECT convalidated FROM pg_constraint
        WHERE conrelid = 'guard.alerts'::regclass AND conname = 'alerts_details_is_object'
    ),
    TRUE,
    'the CHECK that alert details are an object exists and is validated'
);
SELECT throws_ok(
    $$INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message, details)
      VALUES ('t:1', 'test', 'call', 'low', 'x', '[1, 2]')$$,
    '23514', NULL, 'an alert whose details are an array is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message, details)
      VALUES ('t:2', 'test', 'call', 'low', 'x', 'null')$$,
    '23514', NULL, 'an alert whose details are JSON null is refused'
);

-- check_call
SELECT throws_ok(
    $$SELECT * FROM guard.check_call(NULL)$$, '22004', 'check_call needs a call id',
    'check_call(NULL) is refused: no detection over every tenant and the whole history'
);
SELECT throws_ok(
    $$SELECT * FROM guard.check_call(424242)$$, 'P0002', 'call 424242 does not exist',
    'check_call of an unknown call is refused'
);

-- validate_booking and record_validation: nothing recorded for what they refuse; each NULL is
-- refused by validate_booking itself, not by a later step with another function's message
SELECT throws_ok(
    $$SELECT * FROM guard.validate_booking(NULL, 1, 'uid-1')$$, '22004',
    'validate_booking needs a call id, an appointment id and a booking uid',
    'validate_booking with a NULL call is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.validate_booking(1, NULL, 'uid-1')$$, '22004',
    'validate_booking needs a call id, an appointment id and a booking uid',
    'validate_booking with a NULL appointment is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.validate_booking(1, 1, NULL)$$, '22004',
    'validate_booking needs a call id, an appointment id and a booking uid',
    'validate_booking with a NULL booking uid is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(NULL, 1, 1, TRUE, NULL, 1.0)$$, '22004', NULL,
    'record_validation without a company is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(2, 1, 1, TRUE, NULL, 1.0)$$, 'P0002',
    'call 1 of company 2 does not exist',
    'record_validation for a call of another company is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(1, 1, 2, FALSE, 'booking_uid_mismatch', 1.0)$$, '42501',
    'appointment 2 belongs to another company',
    'record_validation naming another company''s appointment is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(1, 1, 1, FALSE, 'x''); DROP TABLE calls; --', 1.0)$$,
    '22023', NULL, 'a failure reason that is not a code is refused'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(1, 1, 1, TRUE, NULL, 'NaN')$$, '22003', NULL,
    'a latency that is not a number is refused'
);
SELECT is(
    (SELECT count(*)::int FROM guard.validation_metrics), 0, 'no metric row was written'
);

-- rollback_booking
SELECT throws_ok(
    $$SELECT guard.rollback_booking(1, NULL)$$, '22004', NULL,
    'rollback_booking without a reason is refused'
);
SELECT throws_ok(
    $$SELECT guard.rollback_booking(2, 'made_up')$$, '22023', 'unknown review reason "made_up"',
    'rollback_booking with an unknown reason is refused, and the call is left alone'
);
SELECT guard.rollback_booking(2, 'other', '"a string"');
SELECT results_eq(
    $$SELECT a.details, r.details, c.booking_failure_reason
      FROM guard.alerts AS a, guard.review_items AS r, calls AS c
      WHERE a.entity_id = 2 AND a.check_id = 'booking_rolled_back' AND r.call_id = 2 AND c.id = 2$$,
    $$VALUES (
        '{"context": "a string", "reason": "other", "still_booked": false}'::jsonb,
        '{"context": "a string", "still_booked": false}'::jsonb,
        'other'
    )$$,
    'a context that is not an object is wrapped, in the alert and the review item'
);

SELECT * FROM finish();
ROLLBACK;
