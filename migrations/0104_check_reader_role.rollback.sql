-- Rollback of 0104_check_reader_role: the owner role leaves the check reader role. The role
-- itself stays (another database of the cluster may use it; a role is dropped by a DBA with
-- DROP OWNED and DROP ROLE); the definitions of the release rolled back to run own checks with
-- the owner role's rights.
-- Locks: none.

DO $$
DECLARE
    reader text := left((SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'reporting'), 56)
    || '_checks';
    owner_role text := (SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'owner');
BEGIN
    IF pg_catalog.pg_has_role(owner_role, reader, 'MEMBER')
        AND EXISTS (
            SELECT FROM pg_catalog.pg_auth_members AS m
            WHERE m.roleid = to_regrole(quote_ident(reader)) AND m.member = to_regrole(quote_ident(owner_role))
        ) THEN
        EXECUTE format('REVOKE %I FROM %I', reader, owner_role);
    END IF;
END;
$$;
