-- Detection timing: a booking that fails late (an older call's attempt failing now) is found by
-- when it failed, and an alert keeps when its row was observed, which detection latency is
-- measured from (guard.kpis).
BEGIN;
SELECT plan(7);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, booking_failed, created_at)
VALUES
-- 1: created 3 h ago, its attempt failed 10 min ago; 2: created 3 h ago, failed 2 h ago
(1, 1, 'late', 'creation_failed', TRUE, now() - interval '3 hours'),
(2, 1, 'old', 'creation_failed', TRUE, now() - interval '3 hours'),
-- 3: failed 10 min ago without the journal (flagged by the application)
(3, 1, 'unjournaled', 'creation_failed', TRUE, now() - interval '10 min'),
-- 4: two failed attempts, 8 and 5 min ago; 5: failed 10 min ago, then booked by hand
(4, 1, 'twice', 'creation_failed', TRUE, now() - interval '20 min'),
(5, 1, 'recovered', 'information_only', FALSE, now() - interval '3 hours'),
-- 6: an attempt unknown for 80 min, settled as failed 10 min ago (recover_attempts)
(6, 1, 'settled-late', 'creation_failed', TRUE, now() - interval '3 hours');
INSERT INTO guard.booking_attempts (
    company_id, call_id, service_id, idempotency_key, state, created_at, finished_at
) VALUES
(1, 1, 1, 'k1', 'failed', now() - interval '11 min', now() - interval '10 min'),
(1, 2, 1, 'k2', 'failed', now() - interval '121 min', now() - interval '120 min'),
(1, 4, 1, 'k4a', 'failed', now() - interval '9 min', now() - interval '8 min'),
(1, 4, 1, 'k4b', 'failed', now() - interval '6 min', now() - interval '5 min'),
(1, 5, 1, 'k5', 'failed', now() - interval '11 min', now() - interval '10 min'),
(1, 6, 1, 'k6', 'failed', now() - interval '90 min', now() - interval '10 min');

SELECT results_eq(
    $$SELECT entity_id, observed_at FROM guard.check_recent_booking_failure ORDER BY entity_id$$,
    $$VALUES (1::bigint, now() - interval '10 min'), (3, now() - interval '10 min'),
             (4, now() - interval '5 min'), (6, now() - interval '10 min')$$,
    'a failure is placed by its last failed attempt, or by the call without one; '
    || 'a call that is no longer failed is not one'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM guard.check_recent_booking_failure WHERE call_id = 1$$,
    $$VALUES (1)$$,
    'a late failure is found by a check of its call'
);

-- The windowed pass over the last 30 minutes finds the late failure of the 3-hour-old call.
SELECT results_eq(
    $$SELECT offending, opened FROM guard.run_detection(now() - interval '30 min', NULL)
      WHERE check_id = 'recent_booking_failure'$$,
    $$VALUES (4, 4)$$,
    'the windowed pass opens an alert for each, the late failures included'
);
SELECT results_eq(
    $$SELECT entity_id, observed_at FROM guard.alerts
      WHERE check_id = 'recent_booking_failure' ORDER BY entity_id$$,
    $$VALUES (1::bigint, now() - interval '10 min'), (3, now() - interval '10 min'),
             (4, now() - interval '5 min'), (6, now() - interval '10 min')$$,
    'each alert keeps when its row was observed'
);
SELECT results_eq(
    $$SELECT sample_size FROM guard.kpis WHERE kpi = 'detection_latency_p95'$$,
    $$VALUES (4::bigint)$$,
    'detection latency is measured over them'
);

-- The history pass of `guard check --all` leaves observed_at empty: reading old rows is not
-- detection latency.
UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'manual';
SELECT results_eq(
    $$SELECT sum(opened)::int FROM guard.detect_between(now() - interval '1 day', now() + interval '1 s')
      WHERE check_id = 'recent_booking_failure'$$,
    $$VALUES (4)$$,
    'a history batch opens them again'
);
SELECT is_empty(
    $$SELECT FROM guard.alerts WHERE status = 'open' AND observed_at IS NOT NULL$$,
    'without an observed time'
);

SELECT * FROM finish();
ROLLBACK;
