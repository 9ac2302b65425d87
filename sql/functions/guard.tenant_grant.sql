-- Bind a role to a company: the role, and every role that inherits its privileges (its members),
-- may then see that company's rows. Returns FALSE when the binding existed already.
-- Executable by the owner role only, and SECURITY INVOKER: it writes guard.tenant_bindings with
-- the caller's rights, so no other role could bind itself through it even if it were granted.
CREATE OR REPLACE FUNCTION guard.tenant_grant(role_name text, company_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
BEGIN
    SELECT r.oid INTO grantee FROM pg_roles AS r WHERE r.rolname = tenant_grant.role_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', tenant_grant.role_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT FROM public.companies AS c WHERE c.id = tenant_grant.company_id) THEN
        RAISE EXCEPTION 'company % does not exist', tenant_grant.company_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO guard.tenant_bindings (role_id, company_id)
    VALUES (grantee, tenant_grant.company_id)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END;
$$;
