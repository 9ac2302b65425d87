-- Both ends of the time windows that aggregate rows, a row exactly at each: a window [start, end)
-- counts the row at its start and leaves the one at its end to the next window (the activity
-- monitors' windows: pgtests/edges/generated_mutant_survivors.sql).
-- - booking_failure_anomaly: the recent window and the same hour 1 to 4 weeks earlier;
-- - the daily report: appointments, corrections and review items of a UTC day;
-- - guard.fold_metric_totals: a booking (booked, failed, queued) that settled
--   exactly at the previous fold's watermark is counted by this fold (the one before stopped short
--   of it), and so are a validation, an alert first seen and a circuit's recovery recorded then;
--   what settled exactly at this fold's horizon (an hour ago) is left to the next fold.
BEGIN;
SELECT plan(8);

INSERT INTO companies (id, name) VALUES (761, 'report'), (762, 'failing');

SET LOCAL session_replication_role = replica;
-- booking_failure_anomaly, company 762. Recent window [now - 60 min, now): five failures
-- 30 minutes ago, one at its start (counted), one at its end (now: not counted). A week earlier,
-- [now - 7 days - 60 min, now - 7 days): ten bookings that went through, one at its start
-- (counted), a failure at its end (not counted).
INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at)
SELECT
    762,
    'f' || g,
    'inbound',
    'unlinked',
    'creation_failed',
    TRUE,
    now() - interval '30 minutes'
FROM generate_series(1, 5) AS g;
INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at)
VALUES
(762, 'f-start', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '60 minutes'),
(762, 'f-end', 'inbound', 'unlinked', 'creation_failed', TRUE, now()),
(762, 'w-start', 'inbound', 'unlinked', 'information_only', FALSE, now() - interval '7 days 60 minutes'),
(762, 'w-end', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '7 days');
INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at)
SELECT
    762,
    'w' || g,
    'inbound',
    'unlinked',
    'information_only',
    FALSE,
    now() - interval '7 days 30 minutes'
FROM generate_series(1, 10) AS g;

SET LOCAL session_replication_role = origin;

SELECT results_eq(
    $$SELECT (detail ->> 'recent_calls')::int, (detail ->> 'recent_failures')::int,
             (detail ->> 'usual_rate')::numeric
      FROM guard.check_booking_failure_anomaly WHERE company_id = 762$$,
    $$VALUES (6, 6, 0.0000)$$,
    'booking_failure_anomaly: each window counts the call at its start, not the one at its end'
);
-- The daily report, company 761: an appointment, a correction and a review item at the first
-- instant of 2031-03-10 (UTC) and one of each at the first instant of the next day.
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, status, created_at) VALUES
(7610, 761, NULL, 'scheduled', '2031-03-10 00:00:00+00'),
(7611, 761, NULL, 'scheduled', '2031-03-11 00:00:00+00');
SET LOCAL session_replication_role = origin;
INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason, corrected_at) VALUES
('I3_booking_flags', 761, 'call', 1, 'edge', '2031-03-10 00:00:00+00'),
('I3_booking_flags', 761, 'call', 2, 'edge', '2031-03-11 00:00:00+00');
INSERT INTO guard.review_items (company_id, reason, created_at) VALUES
(761, 'other', '2031-03-10 00:00:00+00'),
(761, 'other', '2031-03-11 00:00:00+00');
-- an alert about each appointment, both first seen later on the 11th: an alert about an
-- appointment belongs to the day the appointment was created
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at)
VALUES
('orphaned_voice_appointment:appointment:7610', 'orphaned_voice_appointment', 761, 'appointment', 7610, 'high', 'x', '2031-03-11 01:00:00+00'),
('orphaned_voice_appointment:appointment:7611', 'orphaned_voice_appointment', 761, 'appointment', 7611, 'high', 'x', '2031-03-11 01:00:00+00');
SELECT results_eq(
    $$SELECT d.report_date, d.total_appointments, d.auto_corrected, d.manual_reviews,
             coalesce((d.by_check ->> 'orphaned_voice_appointment')::int, 0)
      FROM generate_series(date '2031-03-09', date '2031-03-11', interval '1 day') AS g (day)
      CROSS JOIN LATERAL guard.compute_daily_report(g.day::date) AS d
      WHERE d.company_id = 761 ORDER BY 1$$,
    $$VALUES (date '2031-03-09', 0, 0, 0, 0), (date '2031-03-10', 1, 1, 1, 1), (date '2031-03-11', 1, 1, 1, 1)$$,
    'the daily report counts what was created at the first instant of its day, and leaves what came at the first instant of the next to that day'
);

-- The metric fold: the previous fold stopped at 3 hours ago; settled exactly then (counted now)
-- and a microsecond before (the previous fold's).
INSERT INTO calls (id, company_id, retell_call_id) VALUES (7601, 761, 'c7601'), (7602, 761, 'c7602');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id)
VALUES (7601, 761, 7601, 'u7601'), (7602, 761, 7602, 'u7602');
UPDATE guard.metric_watermark SET folded_before = now() - interval '3 hours';
INSERT INTO guard.booking_attempts (
    company_id, call_id, service_id, idempotency_key, state, created_at, finished_at,
    appointment_id, booking_uid, calendar_calls
) VALUES
(761, 7601, 1, 'edge-booked', 'booked', now() - interval '4 hours', now() - interval '3 hours', 7601, 'u7601', 1),
(761, 7602, 1, 'edge-booked-before', 'booked', now() - interval '4 hours', now() - interval '3 hours' - interval '1 microsecond', 7602, 'u7602', 1),
(761, 7601, 1, 'edge-failed', 'failed', now() - interval '4 hours', now() - interval '3 hours', NULL, NULL, 1),
(761, 7601, 1, 'edge-failed-before', 'failed', now() - interval '4 hours', now() - interval '3 hours' - interval '1 microsecond', NULL, NULL, 1),
(761, 7602, 1, 'edge-queued', 'queued', now() - interval '4 hours', now() - interval '3 hours', NULL, NULL, 1),
(761, 7602, 1, 'edge-queued-before', 'queued', now() - interval '4 hours', now() - interval '3 hours' - interval '1 microsecond', NULL, NULL, 1),
(761, 7601, 1, 'edge-booked-horizon', 'booked', now() - interval '2 hours', now() - interval '1 hour', 7601, 'u7601', 1),
(761, 7602, 1, 'edge-recovered-horizon', 'recovered', now() - interval '2 hours', now() - interval '1 hour', 7602, 'u7602', 1);
INSERT INTO guard.validation_metrics (ok, latency_ms, failure_reason, measured_at) VALUES
(TRUE, 1, NULL, now() - interval '3 hours'),
(TRUE, 2, NULL, now() - interval '3 hours' - interval '1 microsecond'),
(FALSE, 3, 'edge', now() - interval '3 hours'),
(FALSE, 4, 'edge', now() - interval '3 hours' - interval '1 microsecond'),
(TRUE, 5, NULL, now() - interval '1 hour'),
(FALSE, 6, 'edge', now() - interval '1 hour');
INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message, status, resolved_at, resolution, first_seen_at)
VALUES
('edge:at', 'edge_check', 'call', 'low', 'x', 'resolved', now(), 'fixed', now() - interval '3 hours'),
('edge:before', 'edge_check', 'call', 'low', 'x', 'resolved', now(), 'fixed', now() - interval '3 hours' - interval '1 microsecond'),
('edge:horizon', 'edge_check', 'call', 'low', 'x', 'resolved', now(), 'fixed', now() - interval '1 hour');
-- two recoveries (half_open -> closed) of circuits opened 10 minutes before
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid, occurred_at, recorded_at)
VALUES
('edge-at', 1, 'closed', 'open', 'x', 'h', 1, now() - interval '190 minutes', now() - interval '190 minutes'),
('edge-at', 2, 'half_open', 'closed', 'x', 'h', 1, now() - interval '3 hours', now() - interval '3 hours'),
('edge-before', 1, 'closed', 'open', 'x', 'h', 1, now() - interval '190 minutes', now() - interval '190 minutes'),
('edge-before', 2, 'half_open', 'closed', 'x', 'h', 1, now() - interval '3 hours', now() - interval '3 hours' - interval '1 microsecond');
SELECT cmp_ok(guard.fold_metric_totals(), '>=', 1::bigint, 'fold_metric_totals folds what it may');
SELECT results_eq(
    $$SELECT label, total FROM guard.metric_totals WHERE counter = 'bookings' ORDER BY label$$,
    $$VALUES ('booked'::text, 1::bigint), ('failed', 1), ('queued', 1)$$,
    'a booking settled exactly at the previous fold''s watermark is counted once, whatever its state; none settled at the horizon'
);
SELECT results_eq(
    $$SELECT counter, label, total FROM guard.metric_totals
      WHERE counter IN ('validations', 'validation_failures', 'alerts_opened') ORDER BY 1, 2$$,
    $$VALUES ('alerts_opened'::text, 'edge_check'::text, 1::bigint), ('validation_failures', 'edge', 1),
             ('validations', 'failed', 1), ('validations', 'passed', 1)$$,
    'so is a validation measured exactly then, a failed one, and an alert first seen then'
);
SELECT results_eq(
    $$SELECT split_part(label, '|', 1), sum(total)::bigint FROM guard.metric_totals
      WHERE counter IN ('booking_duration', 'breaker_recovery') AND label NOT LIKE '%|sum\_us'
      GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('booked'::text, 1::bigint), ('edge-at', 1), ('failed', 1), ('queued', 1)$$,
    'the duration histograms count the bookings settled then, and the recovery recorded then'
);
SELECT is(
    (SELECT folded_before FROM guard.metric_watermark),
    now() - interval '1 hour',
    'the fold moved the watermark to its horizon'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.metric_totals
        WHERE counter = 'bookings' AND total > 1
    ),
    0,
    'nothing settled before the watermark was counted again'
);

SELECT * FROM finish();
ROLLBACK;
