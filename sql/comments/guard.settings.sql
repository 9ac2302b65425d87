-- What BI tools show for guard.settings (docs/bi-columns.md is generated from these comments).
COMMENT ON TABLE guard.settings IS
'one row per tunable setting (windows, thresholds, retention, KPI targets, known values) that detection, the jobs, the KPIs and the triggers read; shipped by migrations, tuned by a DBA';

COMMENT ON COLUMN guard.settings.key IS 'the setting''s name (`grace_period_seconds`, `retention_alerts_days`, `target_*`, `known_*`, ...); a suffix names its unit: `_seconds`, `_ms`, `_minutes`, `_days`, `_pct` (percent)';
COMMENT ON COLUMN guard.settings.value IS 'jsonb: the value, a number, `true`/`false` or a string (`"phone_match"`; the `known_*` sets comma-separated); `value #>> ''{}''` reads it as text';
COMMENT ON COLUMN guard.settings.value_type IS 'what `value` holds: `integer`, `number`, `boolean` or `text`';
COMMENT ON COLUMN guard.settings.description IS 'what the setting controls, in one sentence';
COMMENT ON COLUMN guard.settings.updated_at IS 'when the row last changed (a DBA''s tuning, or an upgrade)';
