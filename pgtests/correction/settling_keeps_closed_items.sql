-- guard.settle_unknown_booking_attempt: an unknown booking attempt settled later
-- (guard.fail_booking_attempt, as the booking path does) resolves its call's OPEN
-- booking_outcome_unknown item; an item of the same call and reason closed earlier (an earlier
-- attempt a reviewer settled by hand) is history and keeps who closed it, how and why.
BEGIN;
SELECT plan(2);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1');
INSERT INTO guard.review_items (company_id, call_id, reason, details)
VALUES (1, 1, 'booking_outcome_unknown', '{"idempotency_key": "earlier"}');
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann'
WHERE call_id = 1;
UPDATE guard.review_items SET status = 'dismissed', closed_by = 'ann', note = 'not booked'
WHERE call_id = 1;
-- the later attempt: still calling an hour after it started, made unknown by reconcile
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1, 1, 9, 'later', now() - interval '1 hour');
SELECT count(*) FROM guard.reconcile();

SELECT guard.fail_booking_attempt('later', 'calendar_booking_failure');
SELECT results_eq(
    $$SELECT status, closed_by, note FROM guard.review_items
      WHERE call_id = 1 AND reason = 'booking_outcome_unknown' ORDER BY id$$,
    $$VALUES
        ('dismissed', 'ann', 'not booked'),
        ('resolved', 'booking-guard', 'settled as failed: calendar_booking_failure')$$,
    'settling an unknown attempt resolves the open item and leaves the earlier closed one as it was'
);
SELECT is(
    (
        SELECT state FROM guard.booking_attempts
        WHERE idempotency_key = 'later'
    ),
    'failed',
    'the attempt is settled as failed'
);

SELECT * FROM finish();
ROLLBACK;
