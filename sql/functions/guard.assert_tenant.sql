-- Refuse to act on another tenant's row: SECURITY DEFINER functions the application calls with a
-- call id run as the owner, which row-level security does not restrict, so they check the row's
-- company themselves, against two things:
-- - the company the session selected (booking_guard.company_id, guard.current_company): an
--   application connection that serves one company may pin itself; a selection only narrows;
-- - the companies bound to the login (guard.login_companies): a login bound to companies stays
--   within them even here. Inside a SECURITY DEFINER function current_user is the owner, so the
--   login is identified by session_user, which only a superuser can change.
-- Neither (a job, the multi-tenant application, which is the trusted writer): nothing to check.
CREATE OR REPLACE FUNCTION guard.assert_tenant(row_company_id bigint)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    tenant bigint := guard.current_company();
    login_companies bigint[];
BEGIN
    IF tenant IS NOT NULL AND row_company_id IS DISTINCT FROM tenant THEN
        RAISE EXCEPTION 'permission denied: the row belongs to another company than the session''s tenant (%)',
            tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    login_companies := guard.login_companies();
    IF login_companies IS NOT NULL AND NOT coalesce(row_company_id = ANY (login_companies), FALSE) THEN
        RAISE EXCEPTION 'permission denied: the row belongs to a company the login % is not bound to',
            session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;
