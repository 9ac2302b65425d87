-- Row-level security by company on guard.daily_reports (see guard.create_tenant_isolation): every
-- role sees and writes only the rows of the companies bound to it; FORCE, so the owner too, whose
-- jobs pass by guard.daily_reports.owner_maintenance.
SELECT guard.create_tenant_isolation('guard.daily_reports');
