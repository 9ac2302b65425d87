-- The KPI view: every KPI of the design with its target from guard.settings, and the status
-- no_data on an empty database, ok when the target is met and breach when it is missed.
BEGIN;
SELECT plan(14);

CREATE FUNCTION pg_temp.kpi_status(name text) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM guard.kpis WHERE kpi = name
$$;
CREATE FUNCTION pg_temp.kpi_current_value(name text) RETURNS numeric LANGUAGE sql AS $$
    SELECT current_value FROM guard.kpis WHERE kpi = name
$$;

SELECT results_eq(
    $$SELECT kpi, status FROM guard.kpis ORDER BY kpi$$,
    $$VALUES ('alert_response_p95', 'no_data'),
             ('auto_correction_rate', 'no_data'), ('breaker_recovery_time', 'no_data'),
             ('consistency_rate', 'no_data'), ('detection_latency_p95', 'no_data'),
             ('false_positive_rate', 'no_data'),
             ('review_queue_size', 'ok'), ('validation_latency_p95', 'no_data')$$,
    'an empty database: nothing measured yet, an empty review queue is within its target'
);

SELECT results_eq(
    $$SELECT kpi, target, comparison FROM guard.kpis
      WHERE kpi IN ('consistency_rate', 'validation_latency_p95', 'auto_correction_rate')
      ORDER BY kpi$$,
    $$VALUES ('auto_correction_rate', 90::numeric, '>='), ('consistency_rate', 99.5, '>='),
             ('validation_latency_p95', 100, '<=')$$,
    'targets come from guard.settings'
);
SELECT results_eq(
    $$SELECT kpi, target, comparison FROM guard.kpis
      WHERE kpi IN ('breaker_recovery_time', 'review_queue_size', 'false_positive_rate',
                    'detection_latency_p95', 'alert_response_p95')
      ORDER BY kpi$$,
    $$VALUES ('alert_response_p95', 300::numeric, '<='), ('breaker_recovery_time', 60, '<='),
             ('detection_latency_p95', 60, '<='), ('false_positive_rate', 1, '<='),
             ('review_queue_size', 10, '<=')$$,
    'the targets of the original design documents: recovery 60 s, queue 10, false positives 1 %,'
    ' detection within a minute'
);

-- Data that meets every target.
INSERT INTO public.companies (id, name) VALUES (9001, 'Praxis A');
INSERT INTO public.calls (id, company_id, direction, created_at)
SELECT
    g,
    9001,
    'inbound',
    now() - interval '1 hour'
FROM generate_series(90001, 90200) AS g;
INSERT INTO public.calls (id, company_id, direction, created_at)
VALUES (90300, 9001, 'inbound', now() - interval '2 days');
-- one open alert among 200 calls of the last 24 h: 99.5 %; one on an older call does not count
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
VALUES
('call_without_direction:call:90001', 'call_without_direction', 9001, 'call', 90001, 'medium', 'x'),
('call_without_direction:call:90300', 'call_without_direction', 9001, 'call', 90300, 'medium', 'x');
-- a resolved alert on a call of the last 24 h: the call counts as consistent
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, status, resolved_at,
    resolution
) VALUES (
    'call_without_direction:call:90003', 'call_without_direction', 9001, 'call', 90003, 'medium', 'x',
    'resolved', now(), 'fixed'
);
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at)
SELECT
    TRUE,
    10 + g,
    now() - interval '1 hour'
FROM generate_series(1, 20) AS g;
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at)
VALUES (TRUE, 5000, now() - interval '2 days');
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid, occurred_at)
VALUES
('k', 1, 'closed', 'open', 'failures', 'h', 1, now() - interval '100 seconds'),
('k', 2, 'open', 'half_open', 'cooldown', 'h', 1, now() - interval '70 seconds'),
('k', 3, 'half_open', 'open', 'probe failed', 'h', 1, now() - interval '69 seconds'),
('k', 4, 'open', 'half_open', 'cooldown', 'h', 1, now() - interval '50 seconds'),
('k', 5, 'half_open', 'closed', 'probes ok', 'h', 1, now() - interval '40 seconds');
INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason)
SELECT
    'I1_call_direction',
    9001,
    'call',
    g,
    'test'
FROM generate_series(90002, 90010) AS g;
INSERT INTO guard.review_items (company_id, call_id, reason) VALUES (9001, 90011, 'other');
-- claimed by a reviewer, created before the 7-day window: still in the queue
INSERT INTO guard.review_items (company_id, call_id, reason, status, claimed_by, claimed_at, created_at)
VALUES (9001, 90050, 'other', 'claimed', 'reviewer', now() - interval '9 days', now() - interval '10 days');
-- closed items, created before the 7-day window of the auto-correction rate
INSERT INTO guard.review_items (company_id, call_id, reason, status, created_at, closed_at)
SELECT
    9001,
    g,
    'other',
    'resolved',
    now() - interval '10 days',
    now() - interval '1 day'
FROM (
    SELECT generate_series(90020, 90039) AS g
    UNION ALL
    SELECT generate_series(91000, 91079) AS g
) AS closed_calls;
INSERT INTO guard.review_items (
    company_id, call_id, reason, status, created_at, closed_at, false_positive
) VALUES (9001, 90040, 'other', 'dismissed', now() - interval '10 days', now() - interval '1 day', TRUE);

SELECT results_eq(
    $$SELECT kpi, current_value, status, sample_size FROM guard.kpis ORDER BY kpi$$,
    $$VALUES ('alert_response_p95', 0.00::numeric, 'ok', 3::bigint),
             ('auto_correction_rate', 90.00, 'ok', 10),
             ('breaker_recovery_time', 60.00, 'ok', 1),
             ('consistency_rate', 99.50, 'ok', 200),
             ('detection_latency_p95', NULL, 'no_data', 0),
             ('false_positive_rate', 0.99, 'ok', 101),
             ('review_queue_size', 2, 'ok', 2),
             ('validation_latency_p95', 29.05, 'ok', 20)$$,
    'every target met (recovery counted from the first opening, old samples and resolved alerts '
    || 'left out, claimed review items in the queue; alerts just opened and never observed by '
    || 'detection give no latency)'
);

-- Now miss each target.
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
VALUES ('call_without_direction:call:90002', 'call_without_direction', 9001, 'call', 90002, 'medium', 'x');
SELECT is(pg_temp.kpi_status('consistency_rate'), 'breach', 'two open alerts in 200 calls: 99.0 % < 99.5 %');
UPDATE guard.settings SET value = '20'
WHERE key = 'target_validation_p95_ms';
SELECT is(pg_temp.kpi_status('validation_latency_p95'), 'breach', 'p95 above a lowered target');
UPDATE guard.settings SET value = '30'
WHERE key = 'target_breaker_recovery_seconds';
SELECT is(pg_temp.kpi_status('breaker_recovery_time'), 'breach', 'recovery slower than its target');
INSERT INTO guard.review_items (company_id, call_id, reason) VALUES (9001, 90012, 'other');
SELECT is(pg_temp.kpi_current_value('auto_correction_rate'), 81.82, '9 corrections, 2 reviews: 81.82 %');
SELECT is(pg_temp.kpi_status('auto_correction_rate'), 'breach', 'auto-correction below 90 %');
UPDATE guard.settings SET value = '1'
WHERE key = 'target_review_queue_max';
SELECT is(pg_temp.kpi_status('review_queue_size'), 'breach', 'two open items and a claimed one, at most one wanted');
-- (a closed item is never rewritten: a second false positive is a new dismissed item)
INSERT INTO guard.review_items (
    company_id, call_id, reason, status, created_at, closed_at, false_positive
) VALUES (9001, 90041, 'other', 'dismissed', now() - interval '10 days', now() - interval '1 day', TRUE);
SELECT is(pg_temp.kpi_status('false_positive_rate'), 'breach', 'two false positives in 102 closed items: 1.96 % > 1 %');

-- Detection latency and alert response, from the alerts' own times: 20 alerts opened an hour
-- ago, observed 30 s to 600 s before and delivered 10 s to 200 s after.
DELETE FROM guard.alerts;
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message,
    first_seen_at, last_seen_at, observed_at, written_at, delivered_at
)
SELECT
    'booked_without_appointment:call:' || g,
    'booked_without_appointment',
    9001,
    'call',
    g,
    'high',
    'x',
    now() - interval '1 hour',
    now() - interval '1 hour',
    -- created up to 10 minutes before the alert, last written (the claim) up to a minute before
    now() - interval '1 hour' - make_interval(secs => 30 * (g - 90100 + 1)),
    now() - interval '1 hour' - make_interval(secs => 3 * (g - 90100 + 1)),
    now() - interval '1 hour' + make_interval(secs => 10 * (g - 90100 + 1))
FROM generate_series(90100, 90119) AS g;
-- a job alert, undelivered for a day and observed long before, is not detection's
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, first_seen_at, last_seen_at, observed_at
) VALUES (
    'job_failed:job:detect', 'job_failed', 'job', 'high', 'x', now() - interval '23 hours',
    now() - interval '23 hours', now() - interval '30 days'
);
SELECT results_eq(
    $$SELECT kpi, current_value, status, sample_size FROM guard.kpis
      WHERE kpi IN ('alert_response_p95', 'detection_latency_p95') ORDER BY kpi$$,
    $$VALUES ('alert_response_p95', 190.50::numeric, 'ok', 20::bigint),
             ('detection_latency_p95', 57.15, 'ok', 20)$$,
    'p95 of opened - last written (not the call''s creation) and of delivered - opened'
    ' (continuous); job alerts left out'
);
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message,
    first_seen_at, last_seen_at
)
SELECT
    'unknown_value:call:' || g,
    'unknown_value',
    9001,
    'call',
    g,
    'high',
    'x',
    now() - interval '1 hour',
    now() - interval '1 hour'
FROM generate_series(90120, 90121) AS g;
SELECT results_eq(
    $$SELECT kpi, status, sample_size FROM guard.kpis
      WHERE kpi IN ('alert_response_p95', 'detection_latency_p95') ORDER BY kpi$$,
    $$VALUES ('alert_response_p95', 'breach', 22::bigint), ('detection_latency_p95', 'ok', 20)$$,
    'alerts undelivered for an hour count with their age: nobody was told'
);
UPDATE guard.settings SET value = '50'
WHERE key = 'target_detection_latency_seconds';
SELECT is(pg_temp.kpi_status('detection_latency_p95'), 'breach', 'detection slower than a lowered target');

SELECT * FROM finish();
ROLLBACK;
