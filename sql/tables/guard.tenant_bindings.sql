-- Which companies a database role may see. Row-level security on every guard table, and on calls
-- and appointments for reporting and reviewer, reads this table (guard.visible_companies): a
-- role sees the companies bound to it and to every role whose privileges it inherits, so binding
-- a group role covers its members. Only the owner role writes it (guard.tenant_grant,
-- guard.tenant_revoke); a setting a session can change never adds a company.
-- role_id is the role's oid (regrole): renaming a role keeps its binding, and a dropped role's
-- binding can no longer match anybody.
CREATE TABLE guard.tenant_bindings (
    role_id regrole NOT NULL,
    company_id bigint NOT NULL,
    granted_by text NOT NULL DEFAULT session_user,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, company_id)
);

COMMENT ON TABLE guard.tenant_bindings IS
'Companies each database role may see (guard tenant grant|revoke|list; see docs/security.md).';
