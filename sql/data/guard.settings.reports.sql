-- KPI targets that the design names without a number; the DBA tunes them like every setting.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'target_breaker_recovery_seconds', '120', 'number',
    'KPI target: mean time from a circuit opening to closing again.'
),
('target_review_queue_max', '50', 'integer', 'KPI target: open review items at most.'),
(
    'target_false_positive_rate_pct', '5', 'number',
    'KPI target: review items dismissed as false positives, percent of closed items.'
);
