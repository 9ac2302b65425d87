-- Row-level security by company on guard.correction_audit: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.correction_audit.owner_maintenance.
ALTER TABLE guard.correction_audit ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.correction_audit FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.correction_audit
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());
