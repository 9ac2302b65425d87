-- Row-level security by company on guard.review_items: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.review_items.owner_maintenance.
ALTER TABLE guard.review_items ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.review_items FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.review_items
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());
