"""A normalised, comparable picture of everything Booking Guard defines in a database
(docs/dba.md, "What `guard db verify` checks").

Nothing differs between two databases built the same way: no OIDs or sizes; names printed
schema-qualified; role names written as their kind, since guard.role_names makes them
configurable. Server versions print some things differently, so the snapshot keeps NOT NULL on
the column and the domain (18 also records it as a constraint) and `as_printed_by` has the live
server print each stored view again."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
from psycopg import sql

from guard.connection import scalar

BOOKING_TABLES = ("companies", "customers", "services", "calls", "appointments")
GUARD_SCHEMA = "guard"
GUARD_PREFIX = "guard_"  # every object Booking Guard adds to an application's table is named so

Snapshot = dict[str, Any]

_RELATIONS = """
SELECT n.nspname || '.' || c.relname AS name, c.relkind::text AS kind,
       c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls,
       ARRAY(SELECT o FROM unnest(c.reloptions) AS o ORDER BY o COLLATE "C") AS options,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS view_def
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm')
  AND (n.nspname = %(guard)s OR (n.nspname = 'public' AND c.relname = ANY(%(booking)s)))
"""

_COLUMNS = """
SELECT n.nspname || '.' || c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull AND NOT EXISTS (
           SELECT FROM pg_constraint AS k
           WHERE k.conrelid = a.attrelid AND k.contype = 'n' AND NOT k.convalidated
             AND k.conkey = ARRAY[a.attnum]
       ),
       pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
  AND (n.nspname = %(guard)s OR (n.nspname = 'public' AND c.relname = ANY(%(booking)s)))
"""

_CONSTRAINTS = """
SELECT n.nspname || '.' || c.relname, k.conname,
       -- validation is compared on its own; the definition text must not carry it
       regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', ''),
       k.convalidated, k.condeferrable, k.condeferred
FROM pg_constraint AS k
JOIN pg_class AS c ON c.oid = k.conrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE k.contype <> 'n'  -- NOT NULL (18): on the column, see the module's docstring
  AND (n.nspname = %(guard)s OR (n.nspname = 'public' AND c.relname = ANY(%(booking)s)))
"""

_INDEXES = """
SELECT n.nspname || '.' || t.relname, i.relname, pg_get_indexdef(x.indexrelid), x.indisvalid
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE n.nspname = %(guard)s OR (n.nspname = 'public' AND t.relname = ANY(%(booking)s))
"""

_TRIGGERS = """
SELECT n.nspname || '.' || c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
FROM pg_trigger AS t
JOIN pg_class AS c ON c.oid = t.tgrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
  AND (n.nspname = %(guard)s OR (n.nspname = 'public' AND c.relname = ANY(%(booking)s)))
"""

_POLICIES = """
SELECT p.schemaname || '.' || p.tablename, p.policyname, p.permissive, p.roles::text[], p.cmd,
       p.qual, p.with_check
FROM pg_policies AS p
WHERE p.schemaname = %(guard)s OR (p.schemaname = 'public' AND p.tablename = ANY(%(booking)s))
"""

_FUNCTIONS = """
SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       pg_get_functiondef(p.oid)
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = %(guard)s AND p.prokind IN ('f', 'p')
"""

# Privileges: aclexplode over the ACL or, where it is NULL, the built-in default (so that a NULL
# and an explicit default compare equal). grantee 0 is PUBLIC. part: the snapshot's part.
_ACL = """
SELECT o.part, o.name, pg_get_userbyid(o.owner)::text, o.column_name,
       CASE WHEN x.grantee = 0 THEN NULL ELSE pg_get_userbyid(x.grantee)::text END,
       x.privilege_type, x.is_grantable, x.grantee = o.owner
FROM (
    SELECT 'relations', n.nspname || '.' || c.relname, c.relowner, NULL::text,
           coalesce(c.relacl, acldefault('r', c.relowner))
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm')
      AND (n.nspname = %(guard)s OR (n.nspname = 'public' AND c.relname = ANY(%(booking)s)))
    UNION ALL
    SELECT 'relations', n.nspname || '.' || c.relname, c.relowner, a.attname::text, a.attacl
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
      AND c.relkind IN ('r', 'p', 'v', 'm')
      AND (n.nspname = %(guard)s OR (n.nspname = 'public' AND c.relname = ANY(%(booking)s)))
    UNION ALL
    SELECT 'functions',
           n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           p.proowner, NULL, coalesce(p.proacl, acldefault('f', p.proowner))
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname = %(guard)s AND p.prokind IN ('f', 'p')
    UNION ALL
    SELECT 'schema', n.nspname, n.nspowner, NULL, coalesce(n.nspacl, acldefault('n', n.nspowner))
    FROM pg_namespace AS n WHERE n.nspname = %(guard)s
) AS o (part, name, owner, column_name, acl)
CROSS JOIN LATERAL aclexplode(o.acl) AS x
"""

# Domains and composite types (a composite's attributes in order); a table's own row type is
# the table's, not listed here.
_TYPES = """
SELECT n.nspname || '.' || t.typname,
       CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'composite' END,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       t.typnotnull, t.typdefault,
       CASE WHEN t.typtype = 'c' THEN (
           SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                            ORDER BY a.attnum)
           FROM pg_attribute AS a
           WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
       ) END,
       (SELECT coalesce(jsonb_object_agg(k.conname, jsonb_build_object(
                'definition', regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', ''),
                'validated', k.convalidated)), '{}')
        FROM pg_constraint AS k
        WHERE k.contypid = t.oid AND k.contype <> 'n')  -- a domain's NOT NULL (17): typnotnull
FROM pg_type AS t
JOIN pg_namespace AS n ON n.oid = t.typnamespace
LEFT JOIN pg_class AS r ON r.oid = t.typrelid
WHERE n.nspname = %(guard)s AND (t.typtype = 'd' OR (t.typtype = 'c' AND r.relkind = 'c'))
"""

# The parts of each relation: the query (relation, name, then these fields, in order).
RELATION_PARTS = {
    "columns": (_COLUMNS, ("type", "not_null", "default", "identity", "generated")),
    "constraints": (_CONSTRAINTS, ("definition", "validated", "deferrable", "deferred")),
    "indexes": (_INDEXES, ("definition", "valid")),
    "triggers": (_TRIGGERS, ("definition", "enabled")),
    "policies": (_POLICIES, ("permissive", "roles", "command", "using", "with_check")),
}

ROLE_KINDS = ("owner", "application", "reporting", "reviewer")
# registry -> (table, key column), in the order rows are deleted (a check before its rule)
REGISTRIES = {
    "checks": ("guard.checks", "id"),
    "rules": ("guard.rules", "id"),
    "jobs": ("guard.jobs", "name"),
    "settings": ("guard.settings", "key"),
}
# The parts of a snapshot that hold Booking Guard's own registry rows (keys of each registry).
REGISTRY_PARTS = ("settings", "rules", "checks")

_SEQUENCES = """
SELECT n.nspname || '.' || c.relname
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname = %(guard)s
  AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
"""


def take(conn: psycopg.Connection[Any]) -> Snapshot:
    """Read the snapshot from a live database (read-only; restores the search_path)."""
    params = {"guard": GUARD_SCHEMA, "booking": list(BOOKING_TABLES)}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL search_path = pg_catalog")
        has_guard_schema = exists(conn, GUARD_SCHEMA, "namespace")
        cur.execute(_RELATIONS, params)
        attributes = ("kind", "rls", "force_rls", "options", "view_def")
        relations: dict[str, Any] = {
            name: dict(zip(attributes, values, strict=True)) | {part: {} for part in RELATION_PARTS}
            for name, *values in cur.fetchall()
        }
        for part, (query, fields) in RELATION_PARTS.items():
            cur.execute(query, params)
            for relation, name, *values in cur.fetchall():
                relations[relation][part][name] = dict(zip(fields, values, strict=True))
        cur.execute(_FUNCTIONS, params)
        functions = {name: {"definition": definition} for name, definition in cur.fetchall()}
        cur.execute(_TYPES, params)
        fields = ("kind", "base", "not_null", "default", "attributes", "constraints")
        types = {name: dict(zip(fields, values, strict=True)) for name, *values in cur.fetchall()}
        # role name -> kind, from guard.role_names (empty before the security migration), and
        # the roles named after them (guard.check_reader(), guard.bound_application_role())
        kinds: dict[str, str] = dict(
            rows_once(
                conn,
                "guard.role_names",
                "SELECT role_name, kind FROM guard.role_names UNION ALL"
                " SELECT left(role_name, 56) || '_checks', 'check_reader' FROM guard.role_names"
                " WHERE kind = 'reporting' UNION ALL"
                " SELECT left(role_name, 56) || '_bound', 'bound_application' FROM guard.role_names"
                " WHERE kind = 'application'",
            )
        )
        for relation in relations.values():
            for policy in relation["policies"].values():
                policy["roles"] = sorted(kinds.get(role, role) for role in policy["roles"])
        schema_security: dict[str, Any] = {}
        cur.execute(_ACL, params)
        parts = {"relations": relations, "functions": functions, "schema": schema_security}
        _add_grants(parts, cur.fetchall(), kinds)
        cur.execute(
            "SELECT rolname::text FROM pg_roles WHERE rolname = ANY(%s::text[])", (list(kinds),)
        )
        existing_roles = sorted(kinds[name] for (name,) in cur.fetchall())
        cur.execute(_SEQUENCES, params)
        sequences = sorted(name for (name,) in cur.fetchall())
        keys = {part: REGISTRIES[part] for part in REGISTRY_PARTS}
        # the rows guard.apply_grants reads (a migration that forgot one, one removed)
        keys["role_grants"] = (
            "guard.role_grants",
            "format('%s %s %s %s', role_kind, object_type, object_name, privileges)",
        )
        registries = {part: _keys(conn, table, key) for part, (table, key) in keys.items()}
    snapshot: Snapshot = {
        "schemas": [GUARD_SCHEMA] if has_guard_schema else [],
        "relations": relations,
        "functions": functions,
        "types": types,
        "schema_security": schema_security.get(GUARD_SCHEMA, {}),
        "roles": existing_roles,
        "sequences": sequences,
        **registries,
    }
    jobs = cron_jobs(conn)
    if jobs is not None:  # only where pg_cron lives in this database (the snapshot stays as is)
        snapshot["cron_jobs"] = jobs
    return snapshot


def as_printed_by(conn: psycopg.Connection[Any], snapshot: Snapshot) -> Snapshot:
    """`snapshot` with each view's text as this server prints it (a copy), through temporary
    views in a transaction that is rolled back. A text this database cannot build (a table or
    column it lacks) stays as it was: the table's drift is reported. Any other error is raised:
    keeping the text would report a view as drifted that is not."""
    relations = {name: {**relation} for name, relation in snapshot["relations"].items()}
    reprinted = {**snapshot, "relations": relations}  # only view_def changes
    views = [
        (name, relation)
        for name, relation in sorted(reprinted["relations"].items())
        if relation.get("view_def") is not None
    ]
    if not views:
        return reprinted
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        cur.execute("SET LOCAL search_path = pg_catalog")
        cur.execute("SELECT current_setting('transaction_read_only')::boolean")
        if cur.fetchone() == (True,):
            # A standby cannot create the temporary views: every text stays as stored.
            return reprinted

        def reprint(some: list[tuple[int, tuple[str, Any]]]) -> bool:
            """Reprint `some` of the views; False, none changed, when one cannot be built."""
            try:
                with conn.transaction():
                    cur.execute(
                        sql.SQL(";").join(
                            sql.SQL("CREATE TEMPORARY VIEW {} AS {}").format(
                                sql.Identifier(f"guard_reprinted_{n}"), sql.SQL(r["view_def"])
                            )
                            for n, (_name, r) in some
                        )
                    )
                    cur.execute(
                        "SELECT pg_get_viewdef(v::regclass)"
                        " FROM unnest(%s::text[]) WITH ORDINALITY AS u (v, n) ORDER BY n",
                        ([f"pg_temp.guard_reprinted_{n}" for n, _ in some],),
                    )
                    printed = [row[0] for row in cur.fetchall()]
            except psycopg.Error as error:
                if (error.sqlstate or "")[:2] not in _CANNOT_BUILD_CLASSES:
                    raise  # the attempt was cut, not the text unbuildable here
                return False
            for (_n, (_name, relation)), text in zip(some, printed, strict=True):
                relation["view_def"] = text
            return True

        numbered = list(enumerate(views))
        if not reprint(numbered):  # all in one round trip, else view by view
            for view in numbered:
                reprint([view])
    return reprinted


# The SQLSTATE classes of a view text this server cannot build: an unknown name or syntax (42), a
# feature it lacks (0A), a literal its types refuse (22).
_CANNOT_BUILD_CLASSES = frozenset({"42", "0A", "22"})


def cron_jobs(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """pg_cron's schedule of Booking Guard's jobs ("scheduled") and what guard.jobs says it
    should be ("expected"), or None where pg_cron or guard.jobs is not in this database."""
    with conn.transaction():
        if not (exists(conn, "cron.job") and exists(conn, "guard.jobs")):
            return None
        scheduled = conn.execute(
            "SELECT c.jobname::text, c.schedule, c.command, c.active FROM cron.job AS c"
            " WHERE c.jobname LIKE 'guard\\_%' AND c.database = current_database()"
        ).fetchall()
        # what pg_cron runs for each job, as each release has said it
        if exists(conn, "guard.cron_command(text, text)", "procedure"):
            command = "guard.cron_command(j.name, j.schedule)"
        elif exists(conn, "guard.job_command(text)", "procedure"):
            command = "guard.job_command(j.name)"
        else:
            command = "format('SELECT guard.run_job(%L)', j.name)"
        # guard.cron_schedule, where it exists, says what pg_cron is given for a job's schedule
        cron_schedule = exists(conn, "guard.cron_schedule(text)", "procedure")
        schedule = "guard.cron_schedule(j.schedule)" if cron_schedule else "j.schedule"
        expected = conn.execute(
            f"SELECT 'guard_' || j.name, {schedule}, {command}, TRUE"  # fixed texts
            " FROM guard.jobs AS j WHERE j.enabled".encode()
        ).fetchall()
    fields = ("schedule", "command", "active")
    return {
        part: {name: dict(zip(fields, values, strict=True)) for name, *values in rows}
        for part, rows in (("scheduled", scheduled), ("expected", expected))
    }


def rows_created_by_data(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    """The registry rows that sql/data/ created and no migration wrote (guard.registry_rows)."""
    rows = rows_once(conn, "guard.registry_rows", "SELECT registry, key FROM guard.registry_rows")
    return {(str(registry), str(key)) for registry, key in rows}


def adopted_tables(conn: psycopg.Connection[Any]) -> set[str]:
    """Booking tables that existed before Booking Guard (their own layout is the application's)."""
    rows = rows_once(
        conn,
        "guard.baseline_objects",
        "SELECT 'public.' || table_name FROM guard.baseline_objects"
        " WHERE column_name = '' AND NOT created_by_guard",
    )
    return {name for (name,) in rows}


def registered_check_views(conn: psycopg.Connection[Any], shipped_checks: list[str]) -> set[str]:
    """The views of the checks a DBA registered, as `guard.<view>`."""
    rows = rows_once(
        conn,
        "guard.checks",
        "SELECT 'guard.' || check_view FROM guard.checks"
        " WHERE check_view IS NOT NULL AND NOT (id = ANY (%s))",
        (shipped_checks,),
    )
    return {name for (name,) in rows}


def _add_grants(
    parts: dict[str, dict[str, Any]], rows: list[tuple[Any, ...]], kinds: dict[str, str]
) -> None:
    """Set "owner" and "grants" of each object of `parts` from _ACL's rows. Outside schema guard
    only the privileges of Booking Guard's roles count; an owner's own are left out everywhere."""
    for part, name, owner, column, grantee, privilege, grantable, grantee_is_owner in rows:
        entry = parts[part].setdefault(name, {})
        in_guard = name.split(".", 1)[0] == GUARD_SCHEMA or "." not in name
        entry["owner"] = kinds.get(owner, owner) if in_guard else None
        grants = entry.setdefault("grants", [])
        if grantee_is_owner:
            continue
        who = "PUBLIC" if grantee is None else kinds.get(grantee, grantee)
        if not in_guard and who not in ROLE_KINDS:
            continue
        grant = f"{privilege}{f' ({column})' if column else ''} to {who}"
        grants.append(grant + (" with grant option" if grantable else ""))
    for entry in (entry for objects in parts.values() for entry in objects.values()):
        entry.setdefault("grants", [])
        entry.setdefault("owner", None)
        entry["grants"] = sorted(set(entry["grants"]))


def _keys(conn: psycopg.Connection[Any], table: str, column: str) -> list[str]:
    """The sorted keys of one of Booking Guard's registries (`column`: a column or expression)."""
    query = f"SELECT {column} FROM {table} ORDER BY 1"  # names are this module's own
    return [key for (key,) in rows_once(conn, table, query.encode())]


def exists(conn: psycopg.Connection[Any], name: str, kind: str = "class") -> bool:
    """Whether a relation (`class`), a function with its argument types or a schema exists."""
    query = sql.SQL("SELECT to_reg{}(%s) IS NOT NULL").format(sql.SQL(kind))
    return bool(scalar(conn, query, (name,)))


def rows_once(
    conn: psycopg.Connection[Any],
    name: str,
    query: LiteralString | bytes,
    params: Any = None,
    kind: str = "class",
) -> list[tuple[Any, ...]]:
    """The rows of `query`, which reads `name` (see `exists`): none before `name` exists."""
    return conn.execute(query, params).fetchall() if exists(conn, name, kind) else []
