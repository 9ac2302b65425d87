-- 0067_detection_latency: how long a bad row waits to be found, and a found one to be told.
-- guard.alerts.observed_at keeps when the offending row was observed (the check view's
-- observed_at: the call's creation, a failed booking attempt's end), so that detection latency
-- (first_seen_at - observed_at) can be measured; guard.kpis reads it with two new targets.
-- Locks: ACCESS EXCLUSIVE on guard.alerts for milliseconds (a nullable column without a default
-- is a catalog change, no rewrite); ROW EXCLUSIVE on guard.settings (two rows).
ALTER TABLE guard.alerts ADD COLUMN observed_at timestamptz;

INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'target_detection_latency_seconds', '600', 'number',
    'KPI target: p95 time from a bad row being written to its alert (grace period plus one pass).'
),
(
    'target_alert_response_seconds', '300', 'number',
    'KPI target: p95 time from an alert being opened to its delivery on every channel.'
);
