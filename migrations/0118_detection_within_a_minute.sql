-- 0118_detection_within_a_minute: detection latency measured from the commit that made a row
-- bad, and held to the minute detection promises.
-- guard.alerts.written_at keeps the offending row's last write when its alert opened (a call's or
-- an appointment's latest created_at/updated_at): guard.kpis and the daily report count the
-- latency from it instead of observed_at (a call's creation, which put the call's length in it).
-- target_detection_latency_seconds goes from 600 to 60 where a database still has the earlier
-- default: a value a DBA chose is left alone.
-- Locks: ACCESS EXCLUSIVE on guard.alerts for milliseconds (a nullable column without a default
-- is a catalog change, no rewrite); ROW EXCLUSIVE on guard.settings (one row).
ALTER TABLE guard.alerts ADD COLUMN written_at timestamptz;

UPDATE guard.settings
SET value = '60'
WHERE key = 'target_detection_latency_seconds' AND value = '600';
