-- Row-level security by company on guard.daily_reports: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.daily_reports.owner_maintenance.
ALTER TABLE guard.daily_reports ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.daily_reports FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.daily_reports
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());
