-- The four kinds of role Booking Guard grants to, and the role name each kind has in this
-- database. Filled once, when the security migration runs, from the settings
-- booking_guard.role_owner, booking_guard.role_application, booking_guard.role_reporting and
-- booking_guard.role_reviewer (PGOPTIONS, or ALTER DATABASE ... SET before applying), with the
-- defaults guard_owner, guard_app, guard_reporting and guard_reviewer.
CREATE TABLE guard.role_names (
    kind text PRIMARY KEY CHECK (kind IN ('owner', 'application', 'reporting', 'reviewer')),
    role_name text NOT NULL UNIQUE CHECK (role_name <> '')
);

COMMENT ON TABLE guard.role_names IS
'Role name of each kind of Booking Guard role in this database (see docs/security.md).';

INSERT INTO guard.role_names (kind, role_name)
SELECT
    k.kind,
    coalesce(
        nullif(btrim(current_setting('booking_guard.role_' || k.kind, TRUE)), ''), k.default_name
    ) AS role_name
FROM (
    VALUES
    ('owner', 'guard_owner'),
    ('application', 'guard_app'),
    ('reporting', 'guard_reporting'),
    ('reviewer', 'guard_reviewer')
) AS k (kind, default_name);
