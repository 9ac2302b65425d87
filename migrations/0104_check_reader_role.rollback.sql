-- Rollback of 0104_check_reader_role: the check reader role gives back what it holds in this
-- database (the own check views and guard.read_own_check go to the owner role, as the release
-- rolled back to keeps them; every privilege guard.apply_grants gave it is revoked) and the owner
-- role leaves it. The role itself stays (another database of the cluster may use it; a DBA drops
-- a role with DROP OWNED and DROP ROLE); the definitions of the release rolled back to run own
-- checks with the owner role's rights.
-- Locks: none beyond the catalog rows of the objects handed back.

DO $$
DECLARE
    reader text := left((SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'reporting'), 56)
    || '_checks';
    owner_role text := (SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'owner');
BEGIN
    IF to_regrole(quote_ident(reader)) IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('REASSIGN OWNED BY %I TO %I', reader, owner_role);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA guard, public FROM %I', reader);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA guard, public FROM %I', reader);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA guard, public FROM %I', reader);
    EXECUTE format('REVOKE ALL ON SCHEMA guard, public FROM %I', reader);
    IF EXISTS (
        SELECT FROM pg_catalog.pg_auth_members AS m
        WHERE m.roleid = to_regrole(quote_ident(reader)) AND m.member = to_regrole(quote_ident(owner_role))
    ) THEN
        BEGIN
            EXECUTE format('REVOKE %I FROM %I', reader, owner_role);
        EXCEPTION WHEN insufficient_privilege THEN
            -- PostgreSQL 16 and later: only an admin of the check reader (the one who created it,
            -- for another database of this cluster) may; the membership lends nothing to undo
            RAISE NOTICE 'the owner role stays a member of %: only its admin may revoke that', reader;
        END;
    END IF;
END;
$$;
