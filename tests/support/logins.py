"""Logins of Booking Guard's roles, as a DBA creates them: the owner's with limits of its own, as
a DBA sets them on the login that runs `guard watch`, `guard jobs` or `guard metrics`."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import make_conninfo


def role_login(db_url: str, login: str, role: str, **settings: str) -> str:
    """Create `login` (a member of `role`) if it does not exist, set each setting for it in
    this database only (the role is shared by the cluster's test databases), and return the
    connection string that logs in as it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone():
            conn.execute(f'CREATE ROLE "{login}" LOGIN')
        conn.execute(f'GRANT {role} TO "{login}"')
        [(database,)] = conn.execute("SELECT current_database()").fetchall()
        for name, value in settings.items():
            conn.execute(f'ALTER ROLE "{login}" IN DATABASE "{database}" SET {name} = \'{value}\'')
    return make_conninfo(db_url, user=login)


def application_login(db_url: str, login: str) -> str:
    """role_login of the application group role, by the name guard.role_names gives it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        [(group,)] = conn.execute(
            "SELECT role_name FROM guard.role_names WHERE kind = 'application'"
        ).fetchall()
    return role_login(db_url, login, f'"{group}"')


def owner_login(db_url: str, login: str, **settings: str) -> str:
    """role_login of guard_owner."""
    return role_login(db_url, login, "guard_owner", **settings)
