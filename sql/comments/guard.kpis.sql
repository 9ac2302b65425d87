-- What BI tools show for guard.kpis (docs/bi-columns.md is generated from these comments).
COMMENT ON VIEW guard.kpis IS
'one row per KPI of the design, live: its target (from `guard.settings`), current value and status';

COMMENT ON COLUMN guard.kpis.kpi IS 'the KPI''s name: `consistency_rate`, `validation_latency_p95`, `breaker_recovery_time`, `auto_correction_rate`, `review_queue_size`, `false_positive_rate`, `detection_latency_p95`, `alert_response_p95`';
COMMENT ON COLUMN guard.kpis.description IS 'what is measured';
COMMENT ON COLUMN guard.kpis.target IS 'the target, from `guard.settings` (tunable)';
COMMENT ON COLUMN guard.kpis.comparison IS '`>=` (at least the target) or `<=` (at most)';
COMMENT ON COLUMN guard.kpis.current_value IS 'the measured value; NULL when there is nothing to measure';
COMMENT ON COLUMN guard.kpis.unit IS '`percent`, `ms`, `seconds`, `items`';
COMMENT ON COLUMN guard.kpis.status IS '`ok` (target met), `breach` (missed), `no_data` (nothing in the window)';
COMMENT ON COLUMN guard.kpis.time_window IS 'the window measured: `24 hours`, `7 days`, `30 days`, `now`';
COMMENT ON COLUMN guard.kpis.sample_size IS 'how many calls, samples, events or items the value is computed from';
