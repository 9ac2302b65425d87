-- Every binding, with the company's name and the logins it reaches (the role itself when it can
-- log in, and every login that inherits its privileges); role_name is the role's name as it is,
-- unquoted. A binding of a dropped role shows its oid as role_name and reaches nobody. Executable by the owner role only.
CREATE OR REPLACE FUNCTION guard.tenant_list()
RETURNS TABLE (
    role_name text,
    company_id bigint,
    company_name text,
    logins text[],
    granted_by text,
    granted_at timestamptz
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        coalesce(r.rolname::text, b.role_id::oid::text),
        b.company_id,
        c.name::text,
        ARRAY(
            SELECT l.rolname::text
            FROM pg_roles AS l
            WHERE l.rolcanlogin AND pg_has_role(l.oid, b.role_id, 'USAGE') AND NOT l.rolsuper
            ORDER BY 1
        ),
        b.granted_by,
        b.granted_at
    FROM guard.tenant_bindings AS b
    LEFT JOIN pg_roles AS r ON b.role_id = r.oid
    LEFT JOIN public.companies AS c ON b.company_id = c.id
    ORDER BY 1, 2;
$$;
