-- What each kind of Booking Guard role may do beyond what it owns: one row per privilege set on
-- one object, read by guard.apply_grants, which grants it to the role guard.role_names names.
-- Data, not code: a migration that gives a role a new function adds a row (and calls
-- guard.apply_grants) instead of restating the whole grant function. object_name is written as
-- GRANT takes it (a function with its argument types) and is resolved through regnamespace,
-- regclass or regprocedure when granted, so a name that does not exist fails the migration;
-- columns NULL means the whole table.
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
