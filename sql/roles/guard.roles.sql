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
