-- What BI tools show for guard.detection_passes (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON VIEW guard.detection_passes IS
'one row per windowed detection pass (the detect job, `guard check`; not the batches of `guard check --all`), from `guard.detection_runs`; counts span every company';

COMMENT ON COLUMN guard.detection_passes.pass_started_at IS 'when the pass started';
COMMENT ON COLUMN guard.detection_passes.window_start IS 'the start of the window it read (NULL: the whole history, `guard.run_detection(''-infinity'')`)';
COMMENT ON COLUMN guard.detection_passes.run_by IS 'the database role that ran it';
COMMENT ON COLUMN guard.detection_passes.checks IS 'detection checks run';
COMMENT ON COLUMN guard.detection_passes.duration_ms IS 'the time its checks took, summed, ms, 3 decimals';
COMMENT ON COLUMN guard.detection_passes.offending IS 'rows found offending, all checks';
COMMENT ON COLUMN guard.detection_passes.opened IS 'alerts opened';
COMMENT ON COLUMN guard.detection_passes.repeated IS 'open alerts seen again';
COMMENT ON COLUMN guard.detection_passes.resolved IS 'alerts resolved as fixed';
COMMENT ON COLUMN guard.detection_passes.offending_by_check IS 'jsonb: `{"check_id": rows}` for each check that found something';
COMMENT ON COLUMN guard.detection_passes.checks_warned IS 'checks above their warn threshold (`guard.checks.warn_above`), not their error one';
COMMENT ON COLUMN guard.detection_passes.checks_failed IS 'checks above their error threshold (`guard.checks.error_above`)';
