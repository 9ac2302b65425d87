-- KPI targets as the original design documents state them; the DBA tunes them like every setting.
INSERT INTO guard.settings AS s (key, value, value_type, description) VALUES
(
    'target_breaker_recovery_seconds', '60', 'number',
    'KPI target: mean time from a circuit opening to closing again.'
),
('target_review_queue_max', '10', 'integer', 'KPI target: open review items at most.'),
(
    'target_false_positive_rate_pct', '1', 'number',
    'KPI target: review items dismissed as false positives, percent of closed items.'
),
(
    'target_detection_latency_seconds', '60', 'number',
    'KPI target: p95 time from the commit that made a row bad to its alert (detection within a minute).'
),
(
    'target_alert_response_seconds', '300', 'number',
    'KPI target: p95 time from an alert being opened to its delivery on every channel.'
)
ON CONFLICT (key) DO UPDATE SET
    description = excluded.description
WHERE s.description IS DISTINCT FROM excluded.description;
