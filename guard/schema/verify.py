"""`guard db verify`: the live database against the canonical definitions and the migrations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

from guard.errors import first_line
from guard.resources import sql_dir
from guard.schema import catalog, definitions
from guard.schema.definitions import STALE
from guard.schema.drift import Difference, compare, shown
from guard.schema.migrate import Migrator


def verify(database_url: str | None, migrations_dir: Path | None = None) -> list[Difference]:
    """Every difference between the database and the canonical definitions, plus edited and
    pending migrations (empty: exactly what Booking Guard ships)."""
    expected = definitions.stored_snapshot()[0]
    with Migrator(database_url, migrations_dir) as migrator:
        states = migrator.states()
        pending_definitions = migrator.pending_definitions()
        # the records a versioned migration or rollback made STALE
        stale = {r.path for r in definitions.recorded(migrator.conn) or [] if r.sha256 == STALE}
        actual = catalog.take(migrator.conn)
        adopted = catalog.adopted_tables(migrator.conn)
        registered = catalog.registered_check_views(migrator.conn, expected.get("checks", []))
        refusals, grant_rows_changed = role_grant_rows(migrator.conn)
        # The stored snapshot was taken on one server version; views as this one prints them.
        expected = catalog.as_printed_by(migrator.conn, expected)
        extra = own_checks_bypassing_rls(migrator.conn) + missing_sequence_grants(migrator.conn)
    # A DBA's own check (guard.register_check) is known, not drift: its view is theirs.
    differences = [
        _explained(difference, refusals)
        for difference in compare(expected, actual, adopted)
        if not (
            difference.kind == "extra"
            and difference.subject.startswith("view ")
            and difference.subject.removeprefix("view ") in registered
        )
    ]
    differences += grant_rows_changed
    for state in states:
        if state.label in _MIGRATION_DRIFT:
            kind, detail = _MIGRATION_DRIFT[state.label]
            differences.append(Difference(kind, f"migration {state.id}", detail))
    differences += [
        Difference(
            "pending",
            f"definition {path}",
            "a migration or rollback changed its object since it was applied"
            if path in stale
            else "sql/ differs from what was applied",
        )
        for path in pending_definitions
    ]
    return differences + extra


# The states of a migration that are drift (MigrationState.label), as kind and detail.
_MIGRATION_DRIFT = {
    "applied, file missing": ("extra", "applied but not in the directory"),
    "pending": ("pending", "not applied"),
    "applied, EDITED since": ("edited", "file changed since it was applied"),
}


def missing_sequence_grants(conn: psycopg.Connection[Any]) -> list[Difference]:
    """A sequence a role needs to insert into the application's tables (a serial column's, as
    Laravel's `$t->id()` makes) without its USAGE: every insert of that role fails."""
    rows = catalog.rows_once(
        conn,
        "guard.insert_sequences()",
        "SELECT q.sequence_name::text, q.role_kind"
        " FROM guard.insert_sequences() AS q"
        " JOIN guard.role_names AS n ON n.kind = q.role_kind"
        " WHERE to_regrole(quote_ident(n.role_name)) IS NOT NULL"
        " AND NOT has_sequence_privilege(n.role_name, q.sequence_name, 'USAGE')"
        # an identity column's sequence needs no privilege to insert: its absence is no fault
        " AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass"
        " AND d.objid = q.sequence_name AND d.deptype = 'i')"
        " ORDER BY 1, 2",
        kind="procedure",
    )
    return [
        Difference(
            "missing",
            f"grant USAGE on sequence {sequence} to {kind}",
            "its inserts fail; run SELECT guard.apply_grants() as a member of the owner role",
        )
        for sequence, kind in rows
    ]


def _explained(difference: Difference, refusals: dict[str, str | None]) -> Difference:
    """An `extra role grant`, with what guard.apply_grants does with it (`refusals`: why it skips
    each row, by subject; None: it grants it)."""
    if difference.kind != "extra" or difference.subject not in refusals:
        return difference
    refusal = refusals[difference.subject]
    what = (
        f"guard.apply_grants skips it: {refusal}"
        if refusal is not None
        else "guard.apply_grants grants it"
    )
    return Difference(
        "extra",
        difference.subject,
        "a row of guard.role_grants that Booking Guard does not ship"
        f" (sql/grants/role_grants.sql): {what}; delete it",
    )


def _columns(columns: list[str] | None) -> str:
    return "(the whole table)" if columns is None else shown("{" + ",".join(columns) + "}")


_ROLE_GRANT_ROWS = """
SELECT format('%s %s %s %s', role_kind, object_type, object_name, privileges), columns, {refusal}
FROM guard.role_grants
"""
_REFUSAL = "guard.role_grant_refusal(role_kind, object_type, object_name, privileges, columns)"


def role_grant_rows(
    conn: psycopg.Connection[Any],
) -> tuple[dict[str, str | None], list[Difference]]:
    """The rows of guard.role_grants against the rows sql/grants/role_grants.sql writes, the
    file's read as a query, never run (verify changes nothing and works on a read-only standby):
    why guard.apply_grants skips each row (None: it grants it) by its `role grant` subject, and
    the rows Booking Guard ships whose columns changed (the catalog compares keys only)."""
    row = conn.execute(
        "SELECT to_regclass('guard.role_grants') IS NOT NULL,"
        " to_regprocedure('guard.role_grant_refusal(text, text, text, text[], text[])')"
        " IS NOT NULL"
    ).fetchone()
    if row is None or not row[0]:
        return {}, []
    # the function that says why arrived with the rows' trigger; before it, no reason
    query = _ROLE_GRANT_ROWS.format(refusal=_REFUSAL if row[1] else "NULL::text")
    rows = conn.execute(query.encode()).fetchall()
    live = {str(key): columns for key, columns, _ in rows}
    refusals = {f"role grant {shown(str(key))}": refusal for key, _, refusal in rows}
    try:
        shipped_query = shipped_role_grants_query(
            (sql_dir() / "grants" / "role_grants.sql").read_text()
        )
        with conn.transaction():
            shipped = {str(key): columns for key, columns in conn.execute(shipped_query)}
    except (psycopg.Error, ValueError) as error:
        return refusals, [
            Difference(
                "pending",
                "role grants",
                "could not compare the columns of guard.role_grants with"
                f" sql/grants/role_grants.sql: {first_line(error)}",
            )
        ]
    return refusals, [
        Difference(
            "changed",
            f"role grant {shown(key)}",
            f"columns {_columns(columns)}, Booking Guard ships {_columns(shipped[key])}:"
            " guard.apply_grants grants what the row says; `guard db apply` writes the shipped"
            " rows back",
        )
        for key, columns in sorted(live.items())
        if key in shipped and shipped[key] != columns
    ]


_SHIPPED_INSERT = re.compile(
    r"INSERT INTO guard\.role_grants \(role_kind, object_type, object_name, privileges, columns\)"
    r"\s+(?P<rows>(?:VALUES|SELECT)\b.*?);",
    re.DOTALL,
)


def shipped_role_grants_query(text: str) -> bytes:
    """The rows sql/grants/role_grants.sql writes, as one read-only query keyed like
    guard.role_grants' rows; a file that is not one DELETE and INSERTs is refused (ValueError),
    so a new form of it is noticed, not misread."""
    without_comments = re.sub(r"--[^\n]*", "", text)
    rest = _SHIPPED_INSERT.sub("", without_comments)
    if rest.split() != ["DELETE", "FROM", "guard.role_grants;"]:
        raise ValueError("sql/grants/role_grants.sql is not one DELETE and INSERT statements")
    selects = [
        "SELECT format('%s %s %s %s', role_kind, object_type, object_name,"
        " privileges::text[]), columns::text[]"
        f" FROM ({match.group('rows')})"
        " AS v (role_kind, object_type, object_name, privileges, columns)"
        for match in _SHIPPED_INSERT.finditer(without_comments)
    ]
    return "\nUNION ALL\n".join(selects).encode()


def own_checks_bypassing_rls(conn: psycopg.Connection[Any]) -> list[Difference]:
    """A DBA's own check whose view reporting could read past row-level security or its own
    privileges (guard.own_check_bypass, the rule register_check applies): registered before that
    rule existed, or altered since."""
    if not catalog.exists(conn, "guard.own_check_bypass(regclass)", "procedure"):
        return []
    rows = conn.execute(
        "SELECT k.id, k.check_view, guard.own_check_bypass(v.oid)"
        " FROM guard.checks AS k"
        " JOIN pg_class AS v ON v.relname = k.check_view"
        " AND v.relnamespace = 'guard'::regnamespace"
        " WHERE k.check_view IS NOT NULL"
        " AND NOT EXISTS (SELECT FROM guard.definitions AS d"
        " WHERE d.kind = 'view'"
        " AND split_part(d.path, '/', 2) = 'guard.' || k.check_view || '.sql')"
        " ORDER BY k.id"
    ).fetchall()
    # A check view nobody registered was never judged, yet a reader may hold it (granted by
    # hand, or by a release that granted every guard.check_* view): its rows are unsafe.
    unregistered = conn.execute(
        "SELECT c.relname::text, string_agg(r.role_name, ', ' ORDER BY r.role_name)"
        " FROM pg_class AS c JOIN guard.role_names AS r ON r.kind IN ('reporting', 'reviewer')"
        " WHERE c.relnamespace = 'guard'::regnamespace AND c.relkind = 'v'"
        " AND c.relname LIKE 'check\\_%' AND c.relname <> ALL(guard.shipped_check_views())"
        " AND NOT EXISTS (SELECT FROM guard.checks AS k WHERE k.check_view = c.relname)"
        " AND to_regrole(quote_ident(r.role_name)) IS NOT NULL"
        " AND has_table_privilege(r.role_name, c.oid, 'SELECT')"
        " GROUP BY c.relname ORDER BY 1"
    ).fetchall()
    return [
        Difference("unsafe", f"own check {check_id} (view guard.{view})", str(reason))
        for check_id, view, reason in rows
        if reason is not None
    ] + [
        Difference(
            "unsafe",
            f"view guard.{view}",
            f"a check view nobody registered, readable by {readers}: register it"
            " (guard.register_check) or drop it; `guard db apply` takes it away from them",
        )
        for view, readers in unregistered
    ]


# Logins of the reporting or reviewer role, confined by nothing else (superusers, BYPASSRLS and
# the owner role see every company), that inherit no tenant binding: they see no company.
_UNBOUND_LOGINS = """
SELECT l.rolname::text, array_agg(DISTINCT k.kind::text ORDER BY k.kind::text)
FROM pg_roles AS l
CROSS JOIN guard.role_names AS k
JOIN pg_roles AS g ON g.rolname = k.role_name
JOIN guard.role_names AS o ON o.kind = 'owner'
WHERE
    l.rolcanlogin AND NOT l.rolsuper AND NOT l.rolbypassrls
    AND k.kind IN ('reporting', 'reviewer')
    AND pg_has_role(l.oid, g.oid, 'MEMBER')
    AND NOT coalesce(pg_has_role(l.oid, to_regrole(quote_ident(o.role_name)), 'MEMBER'), FALSE)
    AND NOT EXISTS (
        SELECT FROM guard.tenant_bindings AS b WHERE pg_has_role(l.oid, b.role_id, 'MEMBER')
    )
GROUP BY l.rolname
ORDER BY 1
"""


def unbound_logins(conn: psycopg.Connection[Any]) -> list[tuple[str, list[str]]]:
    """Logins that can reach Booking Guard's data (as reporting or reviewer) but are bound to no
    company, so they see nothing: (login, [kinds]). A safe state, so not drift."""
    rows = catalog.rows_once(conn, "guard.tenant_bindings", _UNBOUND_LOGINS)
    return [(login, list(kinds)) for login, kinds in rows]


def zoneless_columns(conn: psycopg.Connection[Any]) -> list[str]:
    """guard.zoneless_columns(): the application's timestamp columns while no zone is declared."""
    query = "SELECT guard.zoneless_columns()"
    rows = catalog.rows_once(conn, "guard.zoneless_columns()", query, kind="procedure")
    return [name for (name,) in rows]


def zoneless_note(columns: list[str]) -> list[str]:
    """The NOTE `guard db apply` and `verify` print for zoneless_columns (empty: none)."""
    if not columns:
        return []
    shown = ", ".join(columns[:4]) + (f" and {len(columns) - 4} more" if len(columns) > 4 else "")
    return [
        f"NOTE: {len(columns)} application column(s) hold times without a time zone ({shown}),"
        " and no zone is declared: Booking Guard reads them as UTC. If the application writes"
        " another zone (Laravel's app.timezone), declare it:",
        "  UPDATE guard.settings SET value = to_jsonb('Europe/Berlin'::text)"
        " WHERE key = 'app_time_zone';",
    ]
