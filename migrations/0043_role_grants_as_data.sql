-- 0043_role_grants_as_data: what each kind of role may do becomes data, guard.role_grants,
-- which guard.apply_grants reads, instead of lists in the function's body. Its rows come from
-- sql/grants/role_grants.sql with the other grants after the migrations: a new function for a
-- role is one more row there, no migration. The grants themselves do not change.
-- Locks: SHARE ROW EXCLUSIVE on guard.role_names (the new foreign key), an instant.

CREATE TABLE guard.role_grants (
    role_kind text NOT NULL REFERENCES guard.role_names (kind),
    object_type text NOT NULL CHECK (object_type IN ('SCHEMA', 'TABLE', 'FUNCTION')),
    object_name text NOT NULL,
    privileges text[] NOT NULL CHECK (
        cardinality(privileges) > 0
        AND privileges <@ ARRAY['USAGE', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'EXECUTE']
    ),
    columns text[] CHECK (object_type = 'TABLE' OR columns IS NULL),
    PRIMARY KEY (role_kind, object_type, object_name, privileges)
);

COMMENT ON TABLE guard.role_grants IS
'Privileges guard.apply_grants grants to each kind of Booking Guard role (see docs/security.md).';
