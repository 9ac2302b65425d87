-- 0116_bound_application_role: the role for application logins that serve some companies only
-- (guard.bound_application_role(): guard_app_bound by default), NOLOGIN, a member of the
-- application role. Its members get the application's rights, and the restrictive policy
-- guard_bound_login on calls, appointments, customers and services confines them to the
-- companies bound to them (guard tenant grant); members of the application role alone (the
-- multi-tenant application) are not touched by that policy and pay nothing for it. It may read
-- its own tenant bindings, which the policy reads. A role of that name that exists already
-- (another database of this cluster) is used as it is.
-- Row-level security is enabled on customers and services (for the policies guard_all_rows,
-- permissive for every role, and guard_bound_login, which the definitions create with it).
-- Locks: ACCESS EXCLUSIVE on customers and services for a moment (no rewrite, no scan).

DO $$
DECLARE
    application_role text := (SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'application');
    bound text := left(application_role, 56) || '_bound';
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS pr WHERE pr.rolname = bound) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', bound);
    END IF;
    IF NOT pg_catalog.pg_has_role(bound, application_role, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', application_role, bound);
    END IF;
    EXECUTE format('GRANT SELECT ON TABLE guard.tenant_bindings TO %I', bound);
END;
$$;

ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.services ENABLE ROW LEVEL SECURITY;
