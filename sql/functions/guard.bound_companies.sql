-- The companies the session's login is bound to (guard.login_companies), or NULL when it is bound
-- to none, for the row-level security policy guard_bound_login on the application's tables. The
-- application's roles may not read guard.tenant_bindings themselves (who else may see which
-- company is none of their business): SECURITY DEFINER; the login is session_user, which the
-- definer's rights do not change. PL/pgSQL: it keeps its plan for the session.
CREATE OR REPLACE FUNCTION guard.bound_companies()
RETURNS bigint[]
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN guard.login_companies();
END;
$$;
