-- 0040_report_only_ended_days: a stored daily report covers a UTC day that has ended
-- (guard.daily_report refuses today and later; guard.compute_daily_report computes any day
-- without storing it). Reports stored before for a day that has not ended are removed: they are
-- not reports of a whole day, and BI totals over guard.daily_reports would count them.
-- Locks: ROW EXCLUSIVE on guard.daily_reports (the rows of unfinished days, usually none).

DELETE FROM guard.daily_reports AS d
WHERE d.report_date >= (now() AT TIME ZONE 'UTC')::date;
