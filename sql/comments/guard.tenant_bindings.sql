-- What BI tools show for guard.tenant_bindings (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.tenant_bindings IS
'one row per database role and company it may see: what row-level security reads; written by the owner role (a DBA: `guard tenant grant`, `guard tenant revoke`); a reader sees only its own roles'' rows';

COMMENT ON COLUMN guard.tenant_bindings.role_id IS 'the role bound: a login, or a group role whose members see the company too; shown by name (a number: the role was dropped and the binding reaches nobody)';
COMMENT ON COLUMN guard.tenant_bindings.company_id IS 'the company (`public.companies.id`) whose rows the role may see; the binding goes when the company is deleted';
COMMENT ON COLUMN guard.tenant_bindings.granted_by IS 'the login that made the binding';
COMMENT ON COLUMN guard.tenant_bindings.granted_at IS 'when the binding was made';
