-- Row-level security by company on guard.validation_metrics: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.validation_metrics.owner_maintenance.
ALTER TABLE guard.validation_metrics ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.validation_metrics FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.validation_metrics
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());
