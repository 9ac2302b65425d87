-- Edges of the check views that every generated mutant of sql/checks/ reached (each of them run,
-- not a sample):
-- - booking_failure_anomaly leaves out a failed call whose last attempt was queued behind an open
--   circuit; a call that did not fail counts as a call whatever its last attempt, and a call
--   failed by either flag alone (outcome creation_failed, or booking_failed) is left out when
--   queued;
-- - booking_volume_drop: exactly the drop ratio times the usual is no drop, one fewer is;
-- - recent_booking_failure: a failed call whose failed attempt was followed by an attempt in
--   another state is reported at its last failed attempt's end.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (791, 'queued flags'), (792, 'at the ratio'), (793, 'under it'),
(794, 'failed then queued');

SET LOCAL session_replication_role = replica;
-- Company 791, the recent window: five failed calls (no attempt), and three whose last attempt
-- was queued: one that did not fail (a call, no failure), one failed by its outcome alone and
-- one by booking_failed alone (neither a call nor a failure). So 6 calls, 5 failures.
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at, updated_at)
SELECT
    7910 + g,
    791,
    'anomaly-' || g,
    'inbound',
    'unlinked',
    'creation_failed',
    TRUE,
    now() - interval '30 min',
    now() - interval '30 min'
FROM generate_series(1, 5) AS g;
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at, updated_at)
VALUES
(7916, 791, 'queued-not-failed', 'inbound', 'unlinked', 'information_only', FALSE, now() - interval '30 min', now() - interval '30 min'),
(7917, 791, 'queued-outcome-failed', 'inbound', 'unlinked', 'creation_failed', FALSE, now() - interval '30 min', now() - interval '30 min'),
(7918, 791, 'queued-flag-failed', 'inbound', 'unlinked', 'information_only', TRUE, now() - interval '30 min', now() - interval '30 min');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, created_at, finished_at)
SELECT
    791,
    c.id,
    1,
    'q-' || c.id,
    'queued',
    now() - interval '29 min',
    now() - interval '29 min'
FROM calls AS c
WHERE c.id IN (7916, 7917, 7918);

-- Company 794: a failed call whose attempt failed 20 minutes ago and whose next attempt was
-- queued 10 minutes ago.
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at, updated_at)
VALUES (7940, 794, 'failed-then-queued', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '30 min', now() - interval '30 min');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, created_at, finished_at)
VALUES
(794, 7940, 1, 'ftq-failed', 'failed', now() - interval '21 min', now() - interval '20 min'),
(794, 7940, 1, 'ftq-queued', 'queued', now() - interval '10 min', now() - interval '10 min');
SET LOCAL session_replication_role = origin;

SELECT results_eq(
    $$SELECT (detail ->> 'recent_calls')::int, (detail ->> 'recent_failures')::int
      FROM guard.check_booking_failure_anomaly WHERE company_id = 791$$,
    $$VALUES (6, 5)$$,
    'booking_failure_anomaly: a queued call that did not fail is a call; one failed by its outcome '
    || 'alone or by booking_failed alone and queued is neither a call nor a failure'
);

-- Appointments: companies 792 and 793 usually book 10 in this hour (the same hour 1 to 4 weeks
-- ago); now 792 booked exactly 0.3 x 10 and 793 one fewer.
INSERT INTO appointments (company_id, created_at)
SELECT
    co.id,
    now() - make_interval(days => 7 * w) - interval '20 min'
FROM (VALUES (792), (793)) AS co (id)
CROSS JOIN generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 10) AS n;
INSERT INTO appointments (company_id, created_at)
SELECT
    r.company_id,
    now() - interval '5 min'
FROM (VALUES (792, 3), (793, 2)) AS r (company_id, how_many)
CROSS JOIN LATERAL generate_series(1, r.how_many) AS n;

SELECT is(
    (SELECT guard.setting('monitor_drop_ratio')::numeric),
    0.3,
    'the drop ratio the next test is at'
);
SELECT results_eq(
    $$SELECT entity_id, (detail ->> 'recent')::int FROM guard.check_booking_volume_drop
      WHERE company_id IN (792, 793)$$,
    $$VALUES (793::bigint, 2)$$,
    'booking_volume_drop: 2 of a usual 10 is a drop; exactly the ratio (3 of 10) is none'
);

SELECT results_eq(
    $$SELECT entity_id, observed_at FROM guard.check_recent_booking_failure WHERE company_id = 794$$,
    $$VALUES (7940::bigint, now() - interval '20 min')$$,
    'recent_booking_failure: a failed call whose failed attempt was followed by a queued one is '
    || 'reported at the failed attempt''s end'
);

SELECT * FROM finish();
ROLLBACK;
