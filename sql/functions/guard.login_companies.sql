-- The companies bound to the session's login (guard.tenant_bindings, inherited through role
-- membership), or NULL when the login is bound to none: the multi-tenant application, a job.
-- session_user, not current_user: the SECURITY DEFINER functions that ask run as the owner.
-- Superusers see every binding through pg_has_role, so they are left out: nothing confines them
-- anyway. Used by guard.assert_tenant (refuse a row) and by the functions that list rows for
-- the application (filter them), so that both agree.
CREATE OR REPLACE FUNCTION guard.login_companies()
RETURNS bigint[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(b.company_id ORDER BY b.company_id)
    FROM guard.tenant_bindings AS b
    WHERE
        pg_has_role(session_user, b.role_id, 'USAGE')
        AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = session_user);
$$;
