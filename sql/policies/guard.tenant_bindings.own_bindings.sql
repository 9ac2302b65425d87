-- A role reads only the bindings that apply to it (its own and those of roles whose privileges it
-- inherits): guard.visible_companies runs with the reader's rights, and who else may see which
-- company is none of its business. Not forced: the owner role owns the table and maintains it.
-- No policy for writes: only the owner role, which bypasses these policies, writes bindings.
ALTER TABLE guard.tenant_bindings ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS own_bindings ON guard.tenant_bindings;

CREATE POLICY own_bindings ON guard.tenant_bindings
FOR SELECT
TO public
USING (pg_catalog.pg_has_role(current_user, role_id, 'USAGE'));
