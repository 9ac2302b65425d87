-- Unbind a role from a company: it (and its members, unless bound otherwise) no longer sees that
-- company's rows from their next statement on. Returns FALSE when there was no such binding.
-- Executable by the owner role only; SECURITY INVOKER, like guard.tenant_grant.
CREATE OR REPLACE FUNCTION guard.tenant_revoke(role_name text, company_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
BEGIN
    SELECT r.oid INTO grantee FROM pg_roles AS r WHERE r.rolname = tenant_revoke.role_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', tenant_revoke.role_name
            USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM guard.tenant_bindings AS b
    WHERE b.role_id = grantee AND b.company_id = tenant_revoke.company_id;
    RETURN FOUND;
END;
$$;
