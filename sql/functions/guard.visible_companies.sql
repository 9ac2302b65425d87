-- The companies whose rows this session may see: those bound (guard.tenant_bindings) to the
-- current role or to any role whose privileges it inherits, narrowed to the one company the
-- session selected with booking_guard.company_id (guard.current_company) when it selected one.
-- The setting can only narrow: a company not bound to the role is never in the result, and an
-- unbound role gets an empty array, so it sees nothing.
-- current_user, not session_user: SET ROLE to a role the login is a member of is PostgreSQL's own
-- authorisation, and such a role inherits no more than the login does, so it can only narrow.
-- Policies call it as (SELECT guard.visible_companies()), an InitPlan evaluated once per
-- statement: `company_id = ANY ($1)` stays an index condition instead of a per-row subquery.
-- SECURITY INVOKER (current_user must be the reader) with a fixed search_path: the reader
-- cannot swap an operator or function used here for one of its own. PL/pgSQL, not SQL: it keeps
-- its plan for the session, where a SQL function called once per statement is planned on every
-- call (bench/tenant_rls.py prints the cost of this lookup per statement).
CREATE OR REPLACE FUNCTION guard.visible_companies()
RETURNS bigint[]
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    selected bigint := guard.current_company();
BEGIN
    RETURN (
        SELECT coalesce(array_agg(DISTINCT b.company_id ORDER BY b.company_id), '{}')
        FROM guard.tenant_bindings AS b
        WHERE
            pg_has_role(current_user, b.role_id, 'USAGE')
            AND b.company_id = coalesce(selected, b.company_id)
    );
END;
$$;
