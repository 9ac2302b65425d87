-- 0067_detection_latency: how long a bad row waits to be found, and a found one to be told.
-- guard.alerts.observed_at keeps when the offending row was observed (the check view's
-- observed_at: the call's creation, a failed booking attempt's end), so that detection latency
-- (first_seen_at - observed_at) can be measured; guard.kpis reads it with two new targets (rows
-- of sql/data/).
-- Locks: ACCESS EXCLUSIVE on guard.alerts for milliseconds (a nullable column without a default
-- is a catalog change, no rewrite).
ALTER TABLE guard.alerts ADD COLUMN observed_at timestamptz;
