-- Default settings. Values are the DBA's to tune; the keys are part of the schema.

INSERT INTO guard.settings AS s (key, value, value_type, description) VALUES
(
    'app_time_zone', '""', 'text',
    'The IANA time zone the application writes its timestamp-without-time-zone columns in (Laravel''s '
    || 'app.timezone); empty = UTC. Unused where the columns are timestamptz.'
),
(
    'grace_period_seconds', '30', 'integer',
    'How long a call may claim appointment_booked before an appointment exists (the booking '
    || 'path''s longest calendar call, 20 s, and a margin: docs/jobs.md).'
),
(
    'alert_throttle_seconds', '300', 'integer',
    'A repeat of an open alert inside this window bumps it instead of adding a row.'
),
(
    'validation_recent_seconds', '300', 'integer',
    'validate_booking: an appointment older than this is not the one just booked.'
),
(
    'failure_window_minutes', '60', 'integer',
    'Window of recent booking failures that detection reports.'
),
(
    'anomaly_factor', '3.0', 'number',
    'A failure rate this many times the usual rate for the hour of the week raises an alert.'
),
(
    'anomaly_min_failures', '5', 'integer',
    'Fewer failures than this in the window never count as an anomaly.'
),
(
    'reconcile_batch_limit', '1000', 'integer',
    'At most this many rows are corrected by one reconcile run.'
),
(
    'default_customer_link_method', '"phone_match"', 'text',
    'customer_link_method given to a linked customer that names none.'
),
(
    'default_customer_link_confidence', '100.00', 'number',
    'customer_link_confidence given to a linked customer that names none (0-100).'
),
(
    'breaker_failure_threshold', '3', 'integer',
    'Consecutive failures that open a circuit.'
),
(
    'breaker_cooldown_seconds', '30', 'integer',
    'Time an open circuit waits before it admits a probe.'
),
(
    'breaker_success_threshold', '2', 'integer',
    'Successful probes that close a half-open circuit.'
),
(
    'breaker_call_timeout_seconds', '10', 'integer',
    'Timeout of a guarded call, and the lease of a half-open probe.'
),
('retention_alerts_days', '90', 'integer', 'Resolved alerts older than this are deleted.'),
('retention_breaker_events_days', '90', 'integer', 'Breaker events older than this are deleted.'),
(
    'retention_validation_metrics_days', '30', 'integer',
    'Validation latency samples older than this are deleted.'
),
('retention_job_runs_days', '7', 'integer', 'pg_cron run details older than this are deleted.'),
(
    'retention_detection_runs_days', '30', 'integer',
    'Detection run history (guard.detection_runs) older than this is deleted.'
),
('target_consistency_rate_pct', '99.5', 'number', 'KPI target: consistent calls, percent.'),
('target_auto_correction_rate_pct', '90', 'number', 'KPI target: problems fixed automatically.'),
('target_validation_p95_ms', '100', 'number', 'KPI target: validate_booking latency p95.')
ON CONFLICT (key) DO UPDATE SET
    description = excluded.description
WHERE s.description IS DISTINCT FROM excluded.description;
