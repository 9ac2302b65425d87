"""`make migration NAME=...`: write the next versioned migration from the difference between the
canonical sql/ files and what the existing migrations build.

Functions, views, triggers, policies and grants are never written into a migration: `guard db
apply` applies them from sql/ (guard.schema.definitions), so a change of those alone needs no
migration file, and the tool says so. What remains is what only a versioned migration changes:
tables, columns, constraints, indexes and the data sql/data/'s upserts cannot change. Both
databases are built (the migrations with sql/'s definitions, and sql/ alone) and compared with
guard.schema.catalog (the snapshot `guard db verify` uses). What the tool can write safely it
writes:

- a new table: its canonical file (sql/tables/NAME.sql, with its indexes and comments), and
  `DROP TABLE` in the rollback;

everything else (a column, a constraint, an index on a table that has rows, a table dropped, a
type, a registry row deleted, cron jobs) it lists as `-- TODO (by hand):` lines at the top of both
files and exits 1: a person writes those statements (a constraint NOT VALID and validated
in a later migration, an index CONCURRENTLY in a `-- transactional: false` migration:
docs/dba.md). The files are for review before they are committed: the header's purpose line is
a TODO too, and `make generated` and the tests follow (docs/contributing.md).

    python -m devtools.new_migration NAME [--database-url URL]

Without --database-url it starts a throwaway PostgreSQL (guard.demo.embedded); with one, it creates
and drops two scratch databases through that server (a role with CREATEDB).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools.throwaway import build_from_canonical
from guard.connection import open_connection
from guard.errors import GuardError
from guard.resources import migrations_dir, sql_dir
from guard.schema import catalog
from guard.schema.migrate import Migrator

NAME = re.compile(r"^[a-z][a-z0-9_]{2,50}$")


@dataclass
class Plan:
    forward: list[str] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)  # undone in reverse order
    locks: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)


def _table_changes(old: catalog.Snapshot, new: catalog.Snapshot, root: Path, plan: Plan) -> None:
    before, after = old["relations"], new["relations"]
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if (now or was or {}).get("kind") not in ("r", "p"):
            continue  # a view is a definition
        if was is None:
            source = root / "tables" / f"{name}.sql"
            if not source.exists():
                plan.todo.append(f"table {name} created: no sql/tables/{name}.sql to copy")
                continue
            plan.forward.append(source.read_text().rstrip())
            plan.rollback.append(f"DROP TABLE {name};")
            continue
        if now is None:
            plan.todo.append(f"table {name} dropped")
            continue
        for part in ("columns", "constraints", "indexes", "rls", "force_rls", "options"):
            if was.get(part) != now.get(part):
                plan.todo.append(f"{part} of {name} changed")


def plan_migration(old: catalog.Snapshot, new: catalog.Snapshot, root: Path) -> Plan:
    """The versioned statements that take a database from `old` (built by the migrations) to
    `new` (built from the canonical files under root)."""
    plan = Plan()
    _table_changes(old, new, root, plan)
    for key in ("types", "roles", "sequences", "cron_jobs"):
        if old.get(key) != new.get(key):
            plan.todo.append(f"{key} changed")
    # A registry row sql/ has and the migrations do not is created by its data file at apply
    # (no migration); one the migrations build and sql/ no longer has is a shipped row to delete.
    for key in catalog.REGISTRY_PARTS:
        gone = sorted(set(old.get(key) or []) - set(new.get(key) or []))
        if gone:
            plan.todo.append(f"{key} rows deleted: {', '.join(gone)}")
    return plan


def next_migration_id(directory: Path, name: str) -> str:
    numbers = [int(p.name[:4]) for p in directory.glob("[0-9][0-9][0-9][0-9]*.sql")]
    return f"{max(numbers, default=0) + 1:04d}_{name}"


def render(migration_id: str, plan: Plan) -> tuple[str, str]:
    todo = [f"-- TODO (by hand): {item}" for item in plan.todo]
    header = [
        f"-- {migration_id}: TODO: what it changes and why (written by `make migration`).",
        *todo,
        "-- Locks: none on existing tables (new tables)."
        if plan.forward
        else "-- Locks: TODO (the lock each statement takes, docs/dba.md).",
        "",
    ]
    forward = "\n".join(header) + "\n" + "\n\n".join(plan.forward) + "\n"
    back = [f"-- Rollback of {migration_id}: TODO: what it undoes.", *todo, ""]
    rollback = "\n".join(back) + "\n" + "\n\n".join(reversed(plan.rollback)) + "\n"
    return forward, rollback


@contextmanager
def _server(database_url: str | None) -> Iterator[str]:
    """An admin URL of a PostgreSQL server the scratch databases are made on."""
    if database_url:
        yield database_url
        return
    from guard.demo.embedded import EmbeddedCluster  # noqa: PLC0415 - only without --database-url

    with tempfile.TemporaryDirectory(prefix="guard-migration-", dir="/tmp") as tmp:
        Path(tmp).chmod(0o755)
        cluster = EmbeddedCluster(Path(tmp) / "cluster", fast_unsafe=True)
        cluster.start()
        try:
            yield cluster.url("postgres")
        finally:
            cluster.stop()


@contextmanager
def _scratch(admin_url: str) -> Iterator[str]:
    name = f"guard_migration_{uuid.uuid4().hex[:12]}"
    with open_connection(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield _with_db(admin_url, name)
    finally:
        with open_connection(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _with_db(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def snapshots(
    admin_url: str, sql_root: Path, migrations: Path
) -> tuple[catalog.Snapshot, catalog.Snapshot]:
    """(built by the migrations, built from the canonical files)."""
    with _scratch(admin_url) as from_migrations, _scratch(admin_url) as from_canonical:
        try:
            with Migrator(from_migrations, migrations, sql_directory=sql_root) as migrator:
                migrator.apply()
        except GuardError:
            # sql/ defines something on a table the new migration is to create (a view on it):
            # the tables, columns and rows the migrations build are what is compared anyway.
            with _scratch(admin_url) as tables_only:
                with Migrator(
                    tables_only, migrations, sql_directory=sql_root, checkout_definitions=False
                ) as migrator:
                    migrator.apply()
                build_from_canonical(from_canonical, sql_root)
                with open_connection(tables_only) as a, open_connection(from_canonical) as b:
                    return catalog.take(a), catalog.take(b)
        build_from_canonical(from_canonical, sql_root)
        with open_connection(from_migrations) as a, open_connection(from_canonical) as b:
            return catalog.take(a), catalog.take(b)


def write_migration(
    name: str, admin_url: str, sql_root: Path | None = None, migrations: Path | None = None
) -> tuple[Path | None, Plan]:
    """Write the migration pair; returns its path (None when there is nothing to do)."""
    sql_root, migrations = sql_root or sql_dir(), migrations or migrations_dir()
    if not NAME.match(name):
        raise ValueError("NAME: lower case letters, digits and _, 3 to 51 characters")
    old, new = snapshots(admin_url, sql_root, migrations)
    plan = plan_migration(old, new, sql_root)
    if not (plan.forward or plan.todo):
        return None, plan
    migration_id = next_migration_id(migrations, name)
    forward_path = migrations / f"{migration_id}.sql"
    rollback_path = migrations / f"{migration_id}.rollback.sql"
    if forward_path.exists() or rollback_path.exists():
        raise FileExistsError(f"{forward_path.name} exists already")
    forward, rollback = render(migration_id, plan)
    forward_path.write_text(forward)
    rollback_path.write_text(rollback)
    return forward_path, plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make migration", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="what the migration does, e.g. cheaper_cancel")
    parser.add_argument("--database-url", help="a server to make scratch databases on")
    args = parser.parse_args(argv)
    try:
        with _server(args.database_url) as admin_url:
            path, plan = write_migration(args.name, admin_url)
    except (ValueError, FileExistsError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if path is None:
        print(
            "no migration needed: the migrations build what sql/ describes (functions, views,"
            " triggers, policies and grants are applied from sql/ by `guard db apply`)"
        )
        return 0
    print(f"wrote {path.name} and its rollback: {len(plan.forward)} statement(s)")
    for item in plan.todo:
        print(f"TODO (by hand): {item}", file=sys.stderr)
    print("review them, then `make generated` and the tests (docs/contributing.md)")
    return 1 if plan.todo else 0


if __name__ == "__main__":
    sys.exit(main())
