-- 0102_detection_read_to: a detection pass after a burst reads a bounded slice of its window and
-- the next pass goes on from where it stopped (guard.run_checks; docs/jobs.md, "What a pass reads
-- and writes"): guard.detection_runs.read_to records, per check, how far the older part of the
-- window was read (NULL: all of it), and detection_slice_calls (50,000) how many calls a slice
-- holds; a check with more than detection_probe_every_alerts (10,000) open alerts probes each
-- when due for a refresh rather than every one at every pass. Every existing row is NULL: those
-- passes read their whole window. The setting rows are also in
-- sql/data/guard.settings.detection.sql, as every shipped row.
-- Locks: ACCESS EXCLUSIVE on guard.detection_runs for an instant (a nullable column without a
-- default is a catalog change, no rewrite); ROW EXCLUSIVE on guard.settings (two rows).

ALTER TABLE guard.detection_runs
ADD COLUMN read_to timestamptz;

INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'detection_slice_calls', '50000', 'integer',
    'After a burst (a window of more than detection_full_window_calls calls), a detection pass reads '
    || 'at most this many calls of the older part of its window, besides the rows since its previous '
    || 'pass; the next pass goes on from where it stopped.'
),
(
    'detection_probe_every_alerts', '10000', 'integer',
    'A detection pass probes every open alert of a check that has at most this many, so that a fixed '
    || 'row resolves its alert at the next pass; above, each open alert is probed when its last_seen_at '
    || 'is due for a refresh (every 30 to 60 minutes).'
);
