-- Unbind a role from a company: it (and its members, unless bound otherwise) no longer sees that
-- company's rows from their next statement on. Returns FALSE when there was no such binding.
-- A dropped role's binding stays (DROP ROLE fires no trigger) and guard.tenant_list shows it
-- under the role's old oid: that number, given as role_name, removes it. Such a binding reaches
-- nobody until PostgreSQL gives the oid to a new role, which would then see the company. A
-- number that is a living role's oid is no role name, and is refused like any unknown name.
-- Executable by the owner role only; SECURITY INVOKER, like guard.tenant_grant.
CREATE OR REPLACE FUNCTION guard.tenant_revoke(role_name text, company_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
    dropped bigint;
BEGIN
    SELECT r.oid INTO grantee FROM pg_roles AS r WHERE r.rolname = tenant_revoke.role_name;
    IF NOT FOUND THEN
        IF tenant_revoke.role_name ~ '^[0-9]{1,10}$' THEN
            dropped := tenant_revoke.role_name::bigint;
        END IF;
        -- an oid is below 2^32; one a living role has is that role's, named by its name
        IF dropped IS NULL OR dropped > 4294967295 THEN
            RAISE EXCEPTION 'role "%" does not exist', tenant_revoke.role_name
                USING ERRCODE = 'undefined_object';
        END IF;
        IF EXISTS (SELECT FROM pg_roles AS r WHERE r.oid = dropped::oid) THEN
            RAISE EXCEPTION 'role "%" does not exist', tenant_revoke.role_name
                USING ERRCODE = 'undefined_object';
        END IF;
        grantee := dropped::oid;
    END IF;
    DELETE FROM guard.tenant_bindings AS b
    WHERE b.role_id = grantee AND b.company_id = tenant_revoke.company_id;
    RETURN FOUND;
END;
$$;
