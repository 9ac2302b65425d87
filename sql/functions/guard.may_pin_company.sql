-- Whether the caller may pin `company` (guard.pin_company): a role with tenant bindings (a
-- reporting, reviewer or bound application login) one of its bound companies, whatever company
-- its login default or a pin selects now; any other role (the multi-tenant application, the
-- owner, a superuser) a company that exists and that it can see. A reporting or reviewer login
-- bound to nothing sees no company, so it may pin none.
-- SECURITY INVOKER: it reads what the caller may read (each role sees its own bindings).
CREATE OR REPLACE FUNCTION guard.may_pin_company(company bigint)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sees_every_role boolean := (
        SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles AS r WHERE r.rolname = current_user
    );
BEGIN
    -- (nested: a condition's parts are not evaluated in order, and the multi-tenant application
    -- may not read the bindings)
    IF NOT sees_every_role AND has_table_privilege('guard.tenant_bindings', 'SELECT') THEN
        IF EXISTS (SELECT FROM guard.tenant_bindings AS b WHERE pg_has_role(current_user, b.role_id, 'USAGE')) THEN
            RETURN EXISTS (
                SELECT FROM guard.tenant_bindings AS b
                WHERE pg_has_role(current_user, b.role_id, 'USAGE') AND b.company_id = may_pin_company.company
            );
        END IF;
    END IF;
    RETURN EXISTS (SELECT FROM public.companies AS c WHERE c.id = may_pin_company.company);
END;
$$;
