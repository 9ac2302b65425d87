-- guard.fold_metric_totals at its edges: a database without the watermark row (the fold makes it
-- and counts from the beginning), a fold whose horizon is exactly the watermark (nothing to do:
-- not even folded_at moves), attempts settled by something other than the booking path
-- (calendar_calls NULL: counted as bookings, never in the duration histogram or the retries), and
-- a circuit's recovery (half_open -> closed, not a probe that failed) measured from the
-- closed -> open that began it, not from a re-opening by a failed probe nor from an operator's
-- forced open after it closed in between, and folded only when recorded before the horizon.
BEGIN;
SELECT plan(9);

INSERT INTO companies (id, name) VALUES (1031, 'A');
SELECT pgtap_setup.company_calls(1031, 10310, 10316, 'c');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id)
VALUES (10312, 1031, 10312, 'u10312'), (10315, 1031, 10315, 'u10315'), (10316, 1031, 10316, 'u10316');

-- each state twice, two hours ago: once settled by the booking path (one calendar call), once
-- by something else (calendar_calls NULL); and an attempt recovered from the calendar
INSERT INTO guard.booking_attempts (
    company_id, call_id, service_id, idempotency_key, state, created_at, finished_at,
    calendar_calls, appointment_id, booking_uid
)
SELECT
    1031,
    v.call_id,
    1,
    'fold-' || v.call_id,
    v.state,
    now() - interval '2 hours 10 seconds',
    now() - interval '2 hours',
    v.calls,
    v.appointment_id,
    v.uid
FROM (
    VALUES
    (10310, 'failed', 1, NULL::bigint, NULL),
    (10311, 'queued', 1, NULL, NULL),
    (10312, 'booked', 1, 10312, 'u10312'),
    (10313, 'failed', NULL, NULL, NULL),
    (10314, 'queued', NULL, NULL, NULL),
    (10315, 'booked', NULL, 10315, 'u10315'),
    (10316, 'recovered', NULL, 10316, 'u10316')
) AS v (call_id, state, calls, appointment_id, uid);

-- circuits that recovered. reprobed: opened at -3h, a failed probe opened it again 30 s later,
-- it closed 61 s after it first opened. forced: opened, an operator closed it (through
-- forced_closed), then forced it open, and it closed 260 s after it first opened. Both recorded
-- two hours ago; at-horizon's recovery recorded exactly at the horizon (an hour ago), before's a
-- microsecond before it.
INSERT INTO guard.breaker_events (
    key, generation, from_state, to_state, reason, host, pid, occurred_at, recorded_at
)
SELECT
    v.key,
    v.generation,
    v.from_state,
    v.to_state,
    'r',
    'h',
    1,
    now() - interval '3 hours' + v.seconds * interval '1 second',
    v.recorded_at
FROM (
    VALUES
    ('reprobed', 1, 'closed', 'open', 0, now() - interval '2 hours'),
    ('reprobed', 2, 'open', 'half_open', 29, now() - interval '2 hours'),
    ('reprobed', 3, 'half_open', 'open', 30, now() - interval '2 hours'),
    ('reprobed', 4, 'open', 'half_open', 60, now() - interval '2 hours'),
    ('reprobed', 5, 'half_open', 'closed', 61, now() - interval '2 hours'),
    ('forced', 1, 'closed', 'open', 0, now() - interval '2 hours'),
    ('forced', 2, 'open', 'forced_closed', 10, now() - interval '2 hours'),
    ('forced', 3, 'forced_closed', 'closed', 20, now() - interval '2 hours'),
    ('forced', 4, 'closed', 'forced_open', 100, now() - interval '2 hours'),
    ('forced', 5, 'forced_open', 'half_open', 200, now() - interval '2 hours'),
    ('forced', 6, 'half_open', 'closed', 260, now() - interval '2 hours'),
    ('at-horizon', 1, 'closed', 'open', 0, now() - interval '2 hours'),
    ('at-horizon', 2, 'half_open', 'closed', 5, now() - interval '1 hour'),
    ('before', 1, 'closed', 'open', 0, now() - interval '2 hours'),
    ('before', 2, 'half_open', 'closed', 5, now() - interval '1 hour 1 microsecond')
) AS v (key, generation, from_state, to_state, seconds, recorded_at);

-- two validation samples, one a failure without a reason; and no watermark row at all (a
-- database restored without it)
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at, failure_reason)
VALUES (TRUE, 1, now() - interval '2 hours', NULL), (FALSE, 1, now() - interval '2 hours', NULL);
DELETE FROM guard.metric_watermark;

SELECT is(
    guard.fold_metric_totals(),
    -- validations 2, their failures 1, bookings 7, retries 3, duration buckets 3, recovery
    -- buckets 3
    19::bigint,
    'fold_metric_totals: without a watermark row it counts everything before its horizon'
);
SELECT results_eq(
    $$SELECT folded_before FROM guard.metric_watermark$$,
    $$VALUES (now() - interval '1 hour')$$,
    'fold_metric_totals: and makes the watermark row, at its horizon'
);
SELECT results_eq(
    $$SELECT counter, sum(total)::int FROM guard.metric_totals
      WHERE counter IN ('bookings', 'booking_retries') OR label NOT LIKE '%|sum\_us'
      GROUP BY counter ORDER BY counter$$,
    $$VALUES ('booking_duration', 3), ('booking_retries', 3), ('bookings', 7),
             ('breaker_recovery', 3), ('validation_failures', 1), ('validations', 2)$$,
    'fold_metric_totals: an attempt nobody counted calendar calls of is a booking, not a '
    'duration nor a retry'
);
SELECT results_eq(
    $$SELECT counter, label, total::int FROM guard.metric_totals
      WHERE counter IN ('bookings', 'validation_failures') ORDER BY counter, label$$,
    $$VALUES ('bookings', 'booked', 2), ('bookings', 'failed', 2), ('bookings', 'queued', 2),
             ('bookings', 'recovered', 1), ('validation_failures', 'unknown', 1)$$,
    'fold_metric_totals: a recovered attempt is a booking; a failure without a reason is unknown'
);
SELECT results_eq(
    $$SELECT label FROM guard.metric_totals WHERE counter = 'booking_duration'
      AND label NOT LIKE '%|sum\_us' ORDER BY label$$,
    $$VALUES ('booked|10'), ('failed|10'), ('queued|10')$$,
    'fold_metric_totals: one duration for each state the booking path settled'
);
SELECT results_eq(
    $$SELECT label, total FROM guard.metric_totals
      WHERE counter = 'breaker_recovery' AND label LIKE '%|sum\_us' ORDER BY label$$,
    $$VALUES ('before|sum_us', 5000000::bigint), ('forced|sum_us', 260000000::bigint),
             ('reprobed|sum_us', 61000000::bigint)$$,
    'fold_metric_totals: a recovery lasts from the closed -> open that began it; one recorded '
    'exactly at the horizon waits for the next fold'
);

-- the horizon exactly at the watermark: nothing to fold, and the watermark row is not written
UPDATE guard.metric_watermark SET folded_at = '2000-01-01 00:00:00+00';
SELECT is(guard.fold_metric_totals(), 0::bigint, 'fold_metric_totals: a second fold in the same instant folds nothing');
SELECT results_eq(
    $$SELECT folded_before, folded_at FROM guard.metric_watermark$$,
    $$VALUES (now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamptz)$$,
    'fold_metric_totals: and leaves the watermark row as it was'
);

-- a range with nothing in it: 0, not NULL
DELETE FROM guard.breaker_events
WHERE key = 'before';
UPDATE guard.metric_watermark SET folded_before = now() - interval '1 hour 1 second';
SELECT is(guard.fold_metric_totals(), 0::bigint, 'fold_metric_totals: a range without rows folds 0');

SELECT * FROM finish();
ROLLBACK;
