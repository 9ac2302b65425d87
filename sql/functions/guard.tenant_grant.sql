-- Bind a role to a company: the role, and every role that inherits its privileges (its members),
-- may then see that company's rows. Returns FALSE when the binding existed already.
-- Warns when the role is an application login outside the bound application role (the binding
-- would not confine it on the application's tables). Executable by the owner role only, and
-- SECURITY INVOKER: it writes guard.tenant_bindings with the caller's rights, so no other role
-- could bind itself through it even if it were granted.
CREATE OR REPLACE FUNCTION guard.tenant_grant(role_name text, company_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
    changed boolean;
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
    changed := FOUND;
    -- A member of the application role that is not in the bound application role writes every
    -- company's rows of the application's tables: the binding narrows only Booking Guard's own
    -- functions and views for it, which is not what a DBA binding an application login means.
    IF
        pg_has_role(grantee, guard.role('application'), 'MEMBER')
        AND NOT pg_has_role(grantee, guard.bound_application_role(), 'MEMBER')
    THEN
        RAISE WARNING 'role "%" is a member of the application role "%" but not of "%": it still reads and writes every company''s calls, appointments, customers and services',
            tenant_grant.role_name, guard.role('application'), guard.bound_application_role()
            USING
                ERRCODE = '01000',
                HINT = format(
                    'To confine it to its companies: GRANT %I TO %I; a multi-tenant application login needs no binding.',
                    guard.bound_application_role(), tenant_grant.role_name
                );
    END IF;
    RETURN changed;
END;
$$;
