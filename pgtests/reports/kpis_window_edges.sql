-- Both sides of each KPI's time window: a row exactly at the start of its window (now minus 24
-- hours, 7 days or 30 days) is measured, one a microsecond older is not; and a value exactly at
-- its target meets it, whichever way the target is compared.
BEGIN;
SELECT plan(3);

INSERT INTO public.companies (id, name) VALUES (801, 'edges');
-- the last 24 hours
INSERT INTO public.calls (id, company_id, direction, created_at) VALUES
(8011, 801, 'inbound', now() - interval '24 hours'),
(8012, 801, 'inbound', now() - interval '24 hours' - interval '1 microsecond');
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at) VALUES
(TRUE, 10, now() - interval '24 hours'),
(TRUE, 5000, now() - interval '24 hours' - interval '1 microsecond');
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, status,
    resolved_at, resolution, first_seen_at, last_seen_at, observed_at, delivered_at
) VALUES
(
    'edge:at', 'edge_check', 801, 'call', 8012, 'low', 'x', 'resolved', now(), 'fixed',
    now() - interval '24 hours', now() - interval '24 hours', now() - interval '24 hours 20 seconds',
    now() - interval '24 hours' + interval '5 seconds'
),
(
    'edge:before', 'edge_check', 801, 'call', 8012, 'low', 'x', 'resolved', now(), 'fixed',
    now() - interval '24 hours' - interval '1 microsecond', now() - interval '24 hours',
    now() - interval '25 hours', now()
);
-- the last 7 days: a circuit that closed exactly 7 days ago, 60 s after it opened, and one that
-- closed a microsecond earlier, 600 s after; a circuit that recovered in 60 s and opened again
-- since (its recovery is from the opening before its closing, not the one after); and one that
-- opened 300 s before its closing and left closed in between only as an operator's forced open
-- (an opening is closed -> open: docs/bi.md), so 260 s
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid, occurred_at)
VALUES
('edge-at', 1, 'closed', 'open', 'failures', 'h', 1, now() - interval '7 days 60 seconds'),
('edge-at', 2, 'half_open', 'closed', 'probes ok', 'h', 1, now() - interval '7 days'),
('edge-before', 1, 'closed', 'open', 'failures', 'h', 1, now() - interval '7 days 600 seconds'),
('edge-before', 2, 'half_open', 'closed', 'probes ok', 'h', 1, now() - interval '7 days' - interval '1 microsecond'),
('reopened', 1, 'closed', 'open', 'failures', 'h', 1, now() - interval '10 minutes'),
('reopened', 2, 'half_open', 'closed', 'probes ok', 'h', 1, now() - interval '9 minutes'),
('reopened', 3, 'closed', 'open', 'failures', 'h', 1, now() - interval '1 minute'),
('forced', 1, 'closed', 'open', 'failures', 'h', 1, now() - interval '300 seconds'),
('forced', 2, 'open', 'forced_closed', 'operator', 'h', 1, now() - interval '290 seconds'),
('forced', 3, 'forced_closed', 'closed', 'operator', 'h', 1, now() - interval '280 seconds'),
('forced', 4, 'closed', 'forced_open', 'operator', 'h', 1, now() - interval '200 seconds'),
('forced', 5, 'forced_open', 'half_open', 'operator', 'h', 1, now() - interval '100 seconds'),
('forced', 6, 'half_open', 'closed', 'probes ok', 'h', 1, now() - interval '40 seconds');
INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason, corrected_at) VALUES
('I1_call_direction', 801, 'call', 8011, 'edge', now() - interval '7 days'),
('I1_call_direction', 801, 'call', 8012, 'edge', now() - interval '7 days' - interval '1 microsecond');
INSERT INTO guard.review_items (company_id, call_id, reason, created_at) VALUES
(801, 8011, 'other', now() - interval '7 days'),
(801, 8012, 'other', now() - interval '7 days' - interval '1 microsecond');
-- the last 30 days; and a resolved item flagged a false positive (written directly: the trail
-- refuses it on a closing update), which only a dismissed item can be
INSERT INTO guard.review_items (company_id, call_id, reason, status, created_at, closed_at, false_positive) VALUES
(801, 8011, 'other', 'dismissed', now() - interval '40 days', now() - interval '30 days', FALSE),
(801, 8011, 'other', 'resolved', now() - interval '40 days', now() - interval '1 day', TRUE),
(801, 8012, 'other', 'dismissed', now() - interval '40 days', now() - interval '30 days' - interval '1 microsecond', TRUE);

SELECT results_eq(
    $$SELECT kpi, sample_size, current_value FROM guard.kpis ORDER BY kpi$$,
    $$VALUES ('alert_response_p95', 1::bigint, 5.00::numeric),
             ('auto_correction_rate', 2, 50.00),
             ('breaker_recovery_time', 3, 126.67),
             ('consistency_rate', 1, 100.00),
             ('detection_latency_p95', 1, 20.00),
             ('false_positive_rate', 2, 0.00),
             ('review_queue_size', 2, 2),
             ('validation_latency_p95', 1, 10.00)$$,
    'each window measures the row exactly at its start and not the one a microsecond older; a '
    || 'resolved item is no false positive'
);

-- Targets set to exactly the measured values.
UPDATE guard.settings SET value = '100'
WHERE key = 'target_consistency_rate_pct';
UPDATE guard.settings SET value = '10'
WHERE key = 'target_validation_p95_ms';
SELECT results_eq(
    $$SELECT kpi, comparison, status FROM guard.kpis
      WHERE kpi IN ('consistency_rate', 'validation_latency_p95') ORDER BY kpi$$,
    $$VALUES ('consistency_rate', '>=', 'ok'), ('validation_latency_p95', '<=', 'ok')$$,
    'a value exactly at its target meets it, at least and at most'
);
UPDATE guard.settings SET value = '100.01'
WHERE key = 'target_consistency_rate_pct';
UPDATE guard.settings SET value = '9.99'
WHERE key = 'target_validation_p95_ms';
SELECT results_eq(
    $$SELECT kpi, status FROM guard.kpis
      WHERE kpi IN ('consistency_rate', 'validation_latency_p95') ORDER BY kpi$$,
    $$VALUES ('consistency_rate', 'breach'), ('validation_latency_p95', 'breach')$$,
    'a hundredth past its target misses it'
);

SELECT * FROM finish();
ROLLBACK;
