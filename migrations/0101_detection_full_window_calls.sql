-- 0101_detection_full_window_calls: the setting that tells a detection pass when its window is a
-- burst. A window of at most detection_full_window_calls calls (100,000) is read whole by every
-- check, as before; a larger one is read from where each check's previous pass left it, less 5
-- minutes and the grace period, so that a pass after a burst costs what changed, not what is open
-- (guard.run_checks; docs/jobs.md, "What a pass reads and writes"). The row is also in
-- sql/data/guard.settings.detection.sql, as every shipped row.
-- Locks: ROW EXCLUSIVE on guard.settings (one row).

INSERT INTO guard.settings (key, value, value_type, description) VALUES (
    'detection_full_window_calls', '100000', 'integer',
    'A detection pass reads its whole window again while the window holds at most this many calls; '
    || 'above, each check reads the rows observed since its previous pass (less 5 minutes and the '
    || 'grace period) and probes every open alert.'
);
