-- Row-level security by company on guard.correction_audit: every role sees and writes only the rows of
-- the companies bound to it (guard.visible_companies: guard.tenant_bindings, narrowed by
-- booking_guard.company_id; unbound: nothing). The sub-SELECT is evaluated once per statement.
-- FORCE, so that the owner obeys the policies too; the owner's jobs pass by
-- guard.correction_audit.owner_maintenance.
ALTER TABLE guard.correction_audit ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.correction_audit FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON guard.correction_audit;

CREATE POLICY tenant_isolation ON guard.correction_audit
FOR ALL
TO public
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03
