-- What BI tools show for guard.validation_latency_daily (docs/bi-columns.md is generated from
-- these comments).
COMMENT ON VIEW guard.validation_latency_daily IS
'one row per UTC day and company: post-booking validations (`guard.validate_booking`), failures and latency, from `guard.validation_metrics`';

COMMENT ON COLUMN guard.validation_latency_daily.day IS 'the UTC day of the measurements';
COMMENT ON COLUMN guard.validation_latency_daily.company_id IS 'the company';
COMMENT ON COLUMN guard.validation_latency_daily.validations IS 'validations run that day';
COMMENT ON COLUMN guard.validation_latency_daily.failures IS 'validations that found the booking inconsistent';
COMMENT ON COLUMN guard.validation_latency_daily.p50_ms IS 'median latency (interpolated), ms, 3 decimals';
COMMENT ON COLUMN guard.validation_latency_daily.p95_ms IS '95th percentile latency (interpolated), ms, 3 decimals';
COMMENT ON COLUMN guard.validation_latency_daily.p99_ms IS '99th percentile latency (interpolated), ms, 3 decimals';
COMMENT ON COLUMN guard.validation_latency_daily.max_ms IS 'the slowest validation, ms';
