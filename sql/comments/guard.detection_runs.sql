-- What BI tools show for guard.detection_runs (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.detection_runs IS
'one row per check per windowed detection pass (the detect job, `guard check`): time taken, rows found, alerts opened and resolved; written by detection, kept 30 days (`retention_detection_runs_days`)';

COMMENT ON COLUMN guard.detection_runs.id IS 'the row''s id, increasing';
COMMENT ON COLUMN guard.detection_runs.pass_started_at IS 'when the pass started; the same for every check of one pass (`guard.detection_passes` groups by it)';
COMMENT ON COLUMN guard.detection_runs.window_start IS 'the start of the window the pass read (rows written since, plus the rows of the open alerts it probed); NULL: the whole history';
COMMENT ON COLUMN guard.detection_runs.check_id IS 'the check run (`guard.checks.id`: `call_without_direction`, ...)';
COMMENT ON COLUMN guard.detection_runs.rule_id IS 'the check''s rule (`guard.rules.id`: `I1_call_direction` …)';
COMMENT ON COLUMN guard.detection_runs.duration_ms IS 'how long this check took in the pass, reading its view and writing its alerts, ms';
COMMENT ON COLUMN guard.detection_runs.offending IS 'rows the check found offending, every company';
COMMENT ON COLUMN guard.detection_runs.opened IS 'alerts it opened (new, or again after a silence longer than `alert_throttle_seconds` past the next pass)';
COMMENT ON COLUMN guard.detection_runs.repeated IS 'open alerts it found again (their `occurrences` counted up only when `last_seen_at` was due for a refresh, 30 to 60 minutes)';
COMMENT ON COLUMN guard.detection_runs.resolved IS 'open alerts it resolved as fixed (their row no longer offends)';
COMMENT ON COLUMN guard.detection_runs.run_by IS 'the database role that ran the pass';
COMMENT ON COLUMN guard.detection_runs.outcome IS '`pass`, `warn` or `fail` against the check''s thresholds (`guard.checks.warn_above`, `error_above`, `threshold_unit`); NULL for a check without thresholds';
COMMENT ON COLUMN guard.detection_runs.read_to IS 'after a burst (a window of more than `detection_full_window_calls` calls): the pass read the older rows of its window up to this time, at most `detection_slice_calls` calls, and the next pass goes on from here; NULL: it read every row up to the pass';
