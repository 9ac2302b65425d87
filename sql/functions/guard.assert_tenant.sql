-- Refuse to act on another tenant's row: SECURITY DEFINER functions the application calls with a
-- call id run as the owner, which row-level security does not restrict, so they check the row's
-- company against the session's tenant (guard.current_company) themselves. No tenant set (a job,
-- an application connection that serves every company): nothing to check.
CREATE FUNCTION guard.assert_tenant(row_company_id bigint)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    tenant bigint := guard.current_company();
BEGIN
    IF tenant IS NOT NULL AND row_company_id IS DISTINCT FROM tenant THEN
        RAISE EXCEPTION 'permission denied: the row belongs to another company than the session''s tenant (%)',
            tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;
