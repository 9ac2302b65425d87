-- For BI: post-booking validations per day and company, failures, and latency percentiles.
CREATE OR REPLACE VIEW guard.validation_latency_daily WITH (security_invoker = TRUE) AS
SELECT
    (m.measured_at AT TIME ZONE 'UTC')::date AS day,
    m.company_id,
    count(*) AS validations,
    count(*) FILTER (WHERE NOT m.ok) AS failures,
    round(percentile_cont(0.50) WITHIN GROUP (ORDER BY m.latency_ms)::numeric, 3) AS p50_ms,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY m.latency_ms)::numeric, 3) AS p95_ms,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY m.latency_ms)::numeric, 3) AS p99_ms,
    round(max(m.latency_ms)::numeric, 3) AS max_ms
FROM guard.validation_metrics AS m
GROUP BY 1, 2;
