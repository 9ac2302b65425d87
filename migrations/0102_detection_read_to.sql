-- 0102_detection_read_to: a detection pass after a burst reads a bounded slice of its window and
-- the next pass goes on from where it stopped (guard.run_checks; docs/jobs.md, "What a pass reads
-- and writes"): guard.detection_runs.read_to records, per check, how far the older part of the
-- window was read (NULL: all of it). Every existing row is NULL: those passes read their whole
-- window. How many calls a slice holds (detection_slice_calls) and from how many open alerts a
-- check probes each only when due (detection_probe_every_alerts) are settings, rows of
-- sql/data/guard.settings.detection.sql.
-- Locks: ACCESS EXCLUSIVE on guard.detection_runs for an instant (a nullable column without a
-- default is a catalog change, no rewrite).

ALTER TABLE guard.detection_runs
ADD COLUMN read_to timestamptz;
