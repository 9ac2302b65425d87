-- The four group roles (NOLOGIN; people and services log in as members of them). A role that
-- exists already (another database of this cluster, or a DBA's own role named in
-- guard.role_names) is used as it is. The migrating user becomes a member of the owner role, so
-- that it may hand Booking Guard's objects over to it and keep maintaining them.
DO $$
DECLARE
    wanted record;
    owner_role text := (SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'owner');
BEGIN
    FOR wanted IN SELECT r.kind, r.role_name FROM guard.role_names AS r ORDER BY r.kind LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS pr WHERE pr.rolname = wanted.role_name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted.role_name);
        END IF;
    END LOOP;
    IF owner_role <> current_user
        AND NOT pg_catalog.pg_has_role(current_user, owner_role, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', owner_role, current_user);
    END IF;
END;
$$;

-- The role a DBA's own checks run as (guard.read_own_check), whoever starts the pass: named after
-- the reporting role (guard.check_reader()), NOLOGIN, a member of nothing; guard.apply_grants
-- gives it exactly what the reporting role may read, of every company. The owner role is a
-- member of it, so that a DBA may hand a registered check view to it.
DO $$
DECLARE
    reader text := left((SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'reporting'), 56)
    || '_checks';
    owner_role text := (SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'owner');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS pr WHERE pr.rolname = reader) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', reader);
    END IF;
    IF NOT pg_catalog.pg_has_role(owner_role, reader, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', reader, owner_role);
    END IF;
END;
$$;

-- The role for application logins that serve some companies only (guard.bound_application_role()),
-- NOLOGIN, a member of the application role: the policy guard_bound_login confines its members
-- to the companies bound to them.
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
END;
$$;
