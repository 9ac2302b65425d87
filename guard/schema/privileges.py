"""What the migrating role needs, checked before a migration runs, each missing privilege named with
the statement that grants it (docs/dba.md, "Managed PostgreSQL").

Since PostgreSQL 16 a CREATEROLE role holds only ADMIN OPTION on a role it creates, and
pg_has_role(..., 'MEMBER') says yes with ADMIN alone, so the released security migration skips its
GRANT: handing objects to the owner role then needs SET, dropping them INHERIT. The migrator sets
createrole_self_grant for its session and, holding ADMIN OPTION on an existing owner role, grants
itself SET and INHERIT on it. A second admin needs the first one's GRANT."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from guard.errors import GuardError
from guard.schema import catalog

ROLE_DEFAULTS = {
    "owner": "guard_owner",
    "application": "guard_app",
    "reporting": "guard_reporting",
    "reviewer": "guard_reviewer",
}

# What apply needs and may lack, each with the statement that grants it: checked before a
# migration runs (missing_for_apply) and named when the server refuses one (hint_for).
_MISSING = {
    "database": "{user} may not create schemas in this database: run `GRANT CREATE ON DATABASE"
    " {database} TO {user};` as its owner (or apply as the owner)",
    "roles": "{user} may not create roles{absent}: run `ALTER ROLE {user} CREATEROLE;` as a role"
    " that may (the provider's admin user has CREATEROLE), or create the roles first (docs/dba.md)",
    "cron": "pg_cron is installed in this database but {user} may not use it: as a role that may"
    " (the provider's admin, or the role that created the extension) run `GRANT USAGE ON SCHEMA"
    " cron TO {user};`",
}
# The statement a user needs, for the privilege errors a migration can meet on a managed server.
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'permission denied for schema "?cron"?'), _MISSING["cron"]),
    (re.compile(r"permission denied to create role"), _MISSING["roles"]),
    (
        re.compile(r'must be able to SET ROLE "(?P<role>[^"]+)"'),
        "{user} must be a member of {role} with SET and INHERIT: a role with ADMIN OPTION on"
        " {role} runs `GRANT {role_ident} TO {user} WITH INHERIT TRUE, SET TRUE;`",
    ),
    (
        re.compile(r'permission denied to grant role "(?P<role>[^"]+)"'),
        "{user} holds no ADMIN OPTION on {role} (since PostgreSQL 16 a CREATEROLE role grants"
        " only the roles it created): a role that has it runs"
        " `GRANT {role_ident} TO {user} WITH INHERIT TRUE, SET TRUE;`",
    ),
    (re.compile(r"permission denied for database"), _MISSING["database"]),
    (
        re.compile(r'must be owner of (?:table|relation) "?(?P<table>[\w.]+)"?'),
        "Booking Guard's migrations alter the booking tables, so {user} must own {table} or be"
        " a member of the role that does: its owner runs `GRANT <owner> TO {user};`",
    ),
)


def hint_for(error: psycopg.Error, conn: psycopg.Connection[Any]) -> str | None:
    """The statement that grants what `error` says is missing, or None."""
    message = str(error.diag.message_primary or error)
    for pattern, hint in _HINTS:
        match = pattern.search(message)
        if match is None:
            continue
        named = match.groupdict()
        role = named.get("role") or ""
        return _say(conn, hint, role=role, role_ident=_ident(role), table=named.get("table") or "")
    return None


def _say(conn: psycopg.Connection[Any], text: str, **more: str) -> str:
    """`text` with the current role, database and `more` filled in."""
    fields = {"user": _ident(conn.info.user), "database": _ident(conn.info.dbname), "absent": ""}
    return text.format(**(fields | more))


def role_names(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The name of each kind of Booking Guard role in this database: guard.role_names once the
    security migration ran, before it the settings that migration will read, or the defaults."""
    if catalog.exists(conn, "guard.role_names"):
        return dict(conn.execute("SELECT kind, role_name FROM guard.role_names").fetchall())
    query = (
        "SELECT kind, coalesce(nullif(btrim(current_setting('booking_guard.role_' || kind, TRUE)),"
        " ''), name) FROM unnest(%s::text[], %s::text[]) AS d (kind, name)"
    )
    return dict(conn.execute(query, (list(ROLE_DEFAULTS), list(ROLE_DEFAULTS.values()))))


_MAY_APPLY = """
SELECT r.rolsuper,
       to_regnamespace('guard') IS NOT NULL
           OR has_database_privilege(current_database(), 'CREATE'),
       r.rolcreaterole,
       ARRAY(SELECT w.name FROM unnest(%s::text[]) AS w (name)
             WHERE NOT EXISTS (SELECT FROM pg_roles AS o WHERE o.rolname = w.name)),
       NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') OR coalesce(
           (SELECT has_schema_privilege('cron', 'USAGE') FROM pg_namespace WHERE nspname = 'cron'),
           FALSE)
FROM pg_roles AS r WHERE r.rolname = current_user
"""


def missing_for_apply(conn: psycopg.Connection[Any]) -> list[str]:
    """What the current role lacks to apply Booking Guard here, each with the statement that
    grants it; empty for a superuser or a role that has it all."""
    names = role_names(conn)
    # and the check reader own checks run as, named after reporting (migration 0104)
    wanted = [*names.values(), names["reporting"][:56] + "_checks"]
    row = conn.execute(_MAY_APPLY, (wanted,)).fetchone()
    assert row is not None
    superuser, may_create_schema, may_create_roles, absent, may_use_cron = row
    if superuser:
        return []
    missing = [] if may_create_schema else [_say(conn, _MISSING["database"])]
    if absent and not may_create_roles:
        listed = f", and Booking Guard's roles {', '.join(absent)} do not exist"
        missing.append(_say(conn, _MISSING["roles"], absent=listed))
    if not may_use_cron:
        missing.append(_say(conn, _MISSING["cron"]))
    return missing


def act_as_owner_role(conn: psycopg.Connection[Any], progress: Callable[[str], None]) -> None:
    """Let this session create Booking Guard's roles with SET and INHERIT, and hold both on an
    owner role that exists already (see the module's docstring). Raises PermissionError, with the
    GRANT to run, when the owner role exists and this role may neither use nor grant it."""
    if conn.info.server_version < 160000:
        return  # before 16 membership is SET and INHERIT, and CREATEROLE grants any role
    conn.execute("SET createrole_self_grant = 'set, inherit'")  # a superuser's is ignored
    owner = role_names(conn)["owner"]
    # a superuser, and the owner role itself, may SET and use it
    usable, admin = conn.execute(
        "SELECT o IS NULL OR (pg_has_role(o, 'SET') AND pg_has_role(o, 'USAGE')),"
        " pg_has_role(o, 'MEMBER WITH ADMIN OPTION') FROM to_regrole(quote_ident(%s)) AS o",
        (owner,),
    ).fetchone() or (True, False)
    if usable:
        return
    user = _ident(conn.info.user)
    if not admin:
        raise GuardError(
            f"{user} may not act as Booking Guard's owner role {_ident(owner)}, which another"
            f" role created (since PostgreSQL 16 a CREATEROLE role grants only the roles it"
            f" created): a role with ADMIN OPTION on it (the admin that applied Booking Guard"
            f" first, or the provider's admin) runs"
            f" `GRANT {_ident(owner)} TO {user} WITH INHERIT TRUE, SET TRUE;`"
        )
    conn.execute(
        sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET TRUE").format(
            sql.Identifier(owner), sql.Identifier(conn.info.user)
        )
    )
    progress(f"granted {user} SET and INHERIT on {_ident(owner)} (it held ADMIN OPTION only)")


def _ident(name: str) -> str:
    """A role or database name as it is written in SQL (quoted only where it must be)."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'
