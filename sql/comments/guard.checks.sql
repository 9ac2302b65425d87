-- What BI tools show for guard.checks (docs/bi-columns.md is generated from these comments).
COMMENT ON TABLE guard.checks IS
'one row per way a breach of a rule is found: a detection view, or code that raises the alert itself (a rolled-back booking, a failed or missed job); shipped by migrations or registered by a DBA';

COMMENT ON COLUMN guard.checks.id IS 'the check''s id (`call_without_direction`, `booking_rolled_back`, `job_failed`, ...); what alerts name (`guard.alerts.check_id`, the Alertmanager `alertname`)';
COMMENT ON COLUMN guard.checks.rule_id IS 'the rule whose breach it finds (`guard.rules.id`: `I1_call_direction` … `I8_known_values`, or `job_health`)';
COMMENT ON COLUMN guard.checks.severity IS 'the severity of its alerts: `critical`, `high`, `medium`, `low`';
COMMENT ON COLUMN guard.checks.description IS 'what it finds, in one sentence; the message of the alerts detection opens for it';
COMMENT ON COLUMN guard.checks.remedy IS 'what is done about what it finds: `auto_fix` (corrected automatically), `review` (queued for a person), `report` (reported only)';
COMMENT ON COLUMN guard.checks.check_view IS 'its detection view in schema `guard` (`check_call_without_direction`, ...); NULL: raised by the code that sees the breach (`booking_rolled_back`, `job_failed`, ...)';
COMMENT ON COLUMN guard.checks.enabled IS '`false`: switched off by a DBA: detection stops running it (its open alerts stay), a job check raises nothing; `booking_rolled_back` and `flags_corrected_on_write` always raise';
COMMENT ON COLUMN guard.checks.updated_at IS 'when the row last changed';
COMMENT ON COLUMN guard.checks.warn_above IS 'a pass whose measure (see `threshold_unit`) is above this warns: one alert of check `check_threshold`, severity medium; NULL: no warn threshold';
COMMENT ON COLUMN guard.checks.error_above IS 'a pass whose measure is above this fails: the same alert at severity high; NULL: no error threshold';
COMMENT ON COLUMN guard.checks.sweep IS '`true`: the hourly `sweep` job also reads the check''s whole view, not only the detection window: for values an update of an old row can make bad (`unknown_value`)';
COMMENT ON COLUMN guard.checks.threshold_unit IS 'what the thresholds measure: `count` (offending rows in the pass) or `rate_pct` (offending rows observed in the pass''s window per 100 calls created in it)';
