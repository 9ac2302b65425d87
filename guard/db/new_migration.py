"""`make migration NAME=...`: write the next migration and its rollback from the difference
between the canonical sql/ files and what the existing migrations build.

Both are built in throwaway databases and compared with guard.db.catalog (the snapshot
`guard db verify` uses). What the tool can write safely it writes:

- a function, view or trigger that changed or is new: its canonical file, `CREATE` made
  `CREATE OR REPLACE`, into the migration; into the rollback, the definition the existing
  migrations built (or a DROP for a new object);
- one that is gone from sql/: a DROP, and its previous definition into the rollback.
- one CREATE OR REPLACE cannot change (a parameter renamed, another result type): a DROP and
  its canonical file, and the reverse into the rollback.

Everything else (tables, columns, constraints, indexes, policies, grants, settings, rules) it
lists as `-- TODO (by hand):` lines at the top of both files and exits 1: a person writes those
statements (constraints NOT VALID and validated in a later migration, see docs/dba.md). The
files are for review before they are committed: the header's purpose line is a TODO too, and
`make snapshot`, `make lock-table` and the tests follow (docs/contributing.md).

    python -m guard.db.new_migration NAME [--database-url URL]

Without --database-url it starts a throwaway PostgreSQL (guard.embedded); with one, it creates
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
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from guard.db import catalog
from guard.db.canonical import build_from_canonical
from guard.db.migrate import Migrator
from guard.resources import migrations_dir, sql_dir

NAME = re.compile(r"^[a-z][a-z0-9_]{2,50}$")
_CREATE = re.compile(r"\bCREATE\s+(?!OR\s+REPLACE\b)(?=(?:FUNCTION|VIEW|TRIGGER)\b)", re.I)
_SIGNATURE = re.compile(r"^(?P<name>[\w.]+)\((?P<args>.*)\)$")


@dataclass
class Plan:
    # New functions come first: an SQL function's body is checked when it is created, so a
    # changed one that calls a new one needs it to exist.
    new_functions: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)  # undone in reverse order
    # Drops of what the migration created run last in the rollback, after everything that
    # used them is back to its previous definition.
    rollback_drops: list[str] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    grants: bool = False
    # the rollback creates a function again (after a DROP): its ownership and grants too
    rollback_grants: bool = False


def _replaceable(text: str) -> str:
    return _CREATE.sub("CREATE OR REPLACE ", text, count=1)


def _file_of(root: Path, folders: tuple[str, ...], stem: str) -> Path | None:
    return next(
        (root / f / f"{stem}.sql" for f in folders if (root / f / f"{stem}.sql").exists()), None
    )


# words that start a type of more than one word: `double precision` is a type, not a parameter
# named double
_MULTI_WORD_TYPES = frozenset({"double", "timestamp", "time", "character", "bit", "interval"})
_RETURNS = re.compile(r"^ RETURNS (.*)$", re.MULTILINE)


def _identity(signature: str) -> str:
    """A function's name and argument types without the parameter names: what PostgreSQL
    identifies it by. Two signatures with one identity are one function whose parameters were
    renamed, which CREATE OR REPLACE refuses."""
    match = _SIGNATURE.match(signature)
    if match is None:
        return signature
    types = []
    for arg in filter(None, (a.strip() for a in match.group("args").split(", "))):
        words = arg.split(" DEFAULT ", 1)[0].split()
        if words[0] == "OUT":  # not part of the identity: a function is called without them
            continue
        if words[0] in ("IN", "INOUT", "VARIADIC"):
            words = words[1:]
        if len(words) > 1 and words[0] not in _MULTI_WORD_TYPES:
            words = words[1:]
        types.append(" ".join(words))
    return f"{match.group('name')}({', '.join(types)})"


def _reshaped(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """Functions CREATE OR REPLACE cannot change, as {old signature: new signature}: a
    parameter renamed (one identity, two signatures) or a different result type."""
    gone = {_identity(s): s for s in set(before) - set(after)}
    found = {gone[_identity(s)]: s for s in set(after) - set(before) if _identity(s) in gone}
    for signature in set(before) & set(after):
        old_result = _RETURNS.search(before[signature]["definition"])
        new_result = _RETURNS.search(after[signature]["definition"])
        if old_result and new_result and old_result.group(1) != new_result.group(1):
            found[signature] = signature
    return found


def _creation_order(bodies: dict[str, str]) -> list[str]:
    """The signatures in an order that creates a function after the others of `bodies` it calls:
    an SQL function's body is checked when it is created (guard.detect() needs the new
    guard.run_detection). A cycle keeps the name order."""
    names = {s: (m.group("name") if (m := _SIGNATURE.match(s)) else s) + "(" for s in bodies}
    pending, ordered = dict(bodies), []
    while pending:
        ready = [
            s for s in sorted(pending) if not any(names[o] in pending[s] for o in pending if o != s)
        ] or sorted(pending)
        for signature in ready:
            ordered.append(signature)
            del pending[signature]
    return ordered


def _reshaped_changes(
    reshaped: dict[str, str], before: dict[str, Any], root: Path, plan: Plan
) -> None:
    """DROP every reshaped function first, then CREATE each after those it calls; the rollback
    the same way round. Their grants go with them (guard.apply_grants puts them back)."""
    sources: dict[str, str] = {}
    for signature in reshaped.values():
        name = _SIGNATURE.match(signature)
        stem = name.group("name") if name else signature
        source = _file_of(root, ("functions",), stem)
        if source is None:
            plan.todo.append(f"function {signature}: no sql/functions/{stem}.sql to copy")
        else:
            sources[signature] = source.read_text().rstrip()
    olds = {old: new for old, new in reshaped.items() if new in sources}
    if not olds:
        return
    plan.forward += [f"DROP FUNCTION {old};" for old in sorted(olds)]
    plan.forward += [sources[new] for new in _creation_order(sources)]
    previous = {old: before[old]["definition"].rstrip() + ";" for old in olds}
    # plan.rollback runs in reverse: the DROPs go last here to run first
    plan.rollback += [previous[old] for old in reversed(_creation_order(previous))]
    plan.rollback += [f"DROP FUNCTION {olds[old]};" for old in sorted(olds)]
    plan.grants = plan.rollback_grants = True


def _function_changes(old: catalog.Snapshot, new: catalog.Snapshot, root: Path, plan: Plan) -> None:
    before, after = old["functions"], new["functions"]
    reshaped = _reshaped(before, after)
    _reshaped_changes(reshaped, before, root, plan)
    done = set(reshaped) | set(reshaped.values())
    for signature in sorted((set(before) | set(after)) - done):
        was, now = before.get(signature), after.get(signature)
        if was is not None and now is not None and was["definition"] == now["definition"]:
            if was.get("grants") != now.get("grants"):
                plan.todo.append(f"grants of function {signature} changed")
            continue
        name = _SIGNATURE.match(signature)
        stem = name.group("name") if name else signature
        if now is None:
            plan.forward.append(f"DROP FUNCTION {signature};")
            plan.rollback.append(was["definition"].rstrip() + ";")
            continue
        source = _file_of(root, ("functions",), stem)
        if source is None:
            plan.todo.append(f"function {signature}: no sql/functions/{stem}.sql to copy")
            continue
        if was is None:
            plan.new_functions.append(_replaceable(source.read_text().rstrip()))
            plan.rollback_drops.append(f"DROP FUNCTION {signature};")
            plan.grants = True
        else:
            plan.forward.append(_replaceable(source.read_text().rstrip()))
            plan.rollback.append(was["definition"].rstrip() + ";")


def _view_sql(name: str, relation: dict[str, Any]) -> str:
    options = f" WITH ({', '.join(relation['options'])})" if relation["options"] else ""
    return (
        f"CREATE OR REPLACE VIEW {name}{options} AS\n{relation['view_def'].rstrip().rstrip(';')};"
    )


def _relation_changes(old: catalog.Snapshot, new: catalog.Snapshot, root: Path, plan: Plan) -> None:
    before, after = old["relations"], new["relations"]
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        kind = (now or was or {}).get("kind")
        if kind == "v":
            _view_change(name, was, now, root, plan)
            continue
        if was is None or now is None:
            plan.todo.append(f"table {name} {'created' if was is None else 'dropped'}")
            continue
        for part in ("columns", "constraints", "indexes", "policies", "grants"):
            if was.get(part) != now.get(part):
                plan.todo.append(f"{part} of {name} changed")
        for key in ("rls", "force_rls", "options"):
            if was.get(key) != now.get(key):
                plan.todo.append(f"{key} of {name} changed")
        _trigger_changes(name, was["triggers"], now["triggers"], root, plan)


def _view_change(
    name: str, was: dict[str, Any] | None, now: dict[str, Any] | None, root: Path, plan: Plan
) -> None:
    # CREATE OR REPLACE VIEW can only add columns at the end; anything else is DROP + CREATE of
    # the view and of whatever depends on it.
    if (
        now is not None
        and was is not None
        and list(was["columns"]) != list(now["columns"])[: len(was["columns"])]
    ):
        plan.todo.append(f"view {name}: columns removed or reordered (DROP and CREATE)")
        return
    if now is None:
        plan.forward.append(f"DROP VIEW {name};")
        plan.rollback.append(_view_sql(name, was or {}))
        plan.locks.append(f"view {name} dropped: ACCESS EXCLUSIVE, an instant")
        return
    source = _file_of(root, ("views", "detection"), name)
    if source is None:
        plan.todo.append(f"view {name}: no sql/views/{name}.sql or sql/detection/{name}.sql")
        return
    plan.forward.append(_replaceable(source.read_text().rstrip()))
    if was is None:
        plan.rollback_drops.append(f"DROP VIEW {name};")
    else:
        plan.rollback.append(_view_sql(name, was))
    plan.locks.append(f"view {name}: ACCESS EXCLUSIVE, an instant")
    if was is None or was.get("grants") != now.get("grants"):
        plan.grants = True


def _trigger_changes(
    table: str, before: dict[str, Any], after: dict[str, Any], root: Path, plan: Plan
) -> None:
    for trigger in sorted(set(before) | set(after)):
        was, now = before.get(trigger), after.get(trigger)
        if was == now:
            continue
        lock = f"trigger {trigger}: SHARE ROW EXCLUSIVE on {table}, an instant"
        if now is None:
            plan.forward.append(f"DROP TRIGGER {trigger} ON {table};")
            plan.rollback.append(was["definition"] + ";")  # type: ignore[index]
            plan.locks.append(lock.replace("SHARE ROW EXCLUSIVE", "ACCESS EXCLUSIVE"))
            continue
        if "CONSTRAINT TRIGGER" in now["definition"]:
            plan.todo.append(f"constraint trigger {trigger} on {table} (DROP and CREATE)")
            continue
        source = _file_of(root, ("triggers",), f"{table}.{trigger}")
        if source is None:
            plan.todo.append(f"trigger {trigger}: no sql/triggers/{table}.{trigger}.sql")
            continue
        plan.forward.append(_replaceable(source.read_text().rstrip()))
        if was is None:
            plan.rollback_drops.append(f"DROP TRIGGER {trigger} ON {table};")
        else:
            plan.rollback.append(_replaceable(was["definition"]) + ";")
        plan.locks.append(lock)


def plan_migration(old: catalog.Snapshot, new: catalog.Snapshot, root: Path) -> Plan:
    """The statements that take a database from `old` (built by the migrations) to `new`
    (built from the canonical files under root)."""
    plan = Plan()
    _function_changes(old, new, root, plan)
    _relation_changes(old, new, root, plan)
    for key in (
        "schema_security",
        "roles",
        "sequences",
        "settings",
        "rules",
        "checks",
        "cron_jobs",
    ):
        if old.get(key) != new.get(key):
            plan.todo.append(f"{key} changed")
    return plan


def next_migration_id(directory: Path, name: str) -> str:
    numbers = [int(p.name[:4]) for p in directory.glob("[0-9][0-9][0-9][0-9]*.sql")]
    return f"{max(numbers, default=0) + 1:04d}_{name}"


def render(migration_id: str, plan: Plan) -> tuple[str, str]:
    todo = [f"-- TODO (by hand): {item}" for item in plan.todo]
    header = [
        f"-- {migration_id}: TODO: what it changes and why (written by `make migration`).",
        *todo,
        "-- Locks:" if plan.locks else "-- Locks: none on tables (functions only).",
        *(f"--   {lock}" for lock in plan.locks),
        "",
    ]
    grants = ["", "-- Ownership and grants of the new objects.", "SELECT guard.apply_grants();"]
    forward = "\n".join(header) + "\n" + "\n\n".join(plan.new_functions + plan.forward)
    forward += ("\n" + "\n".join(grants) if plan.grants else "") + "\n"
    back = [
        f"-- Rollback of {migration_id}: the definitions the migrations before it built.",
        *todo,
        "",
    ]
    undo = [*reversed(plan.rollback), *reversed(plan.rollback_drops)]
    rollback = "\n".join(back) + "\n" + "\n\n".join(undo)
    rollback += ("\n" + "\n".join(grants) if plan.rollback_grants else "") + "\n"
    return forward, rollback


@contextmanager
def _server(database_url: str | None) -> Iterator[str]:
    """An admin URL of a PostgreSQL server the scratch databases are made on."""
    if database_url:
        yield database_url
        return
    from guard.embedded import EmbeddedCluster  # noqa: PLC0415 - only without --database-url

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
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield _with_db(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
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
        with Migrator(from_migrations, migrations) as migrator:
            migrator.apply()
        build_from_canonical(from_canonical, sql_root)
        with psycopg.connect(from_migrations) as a, psycopg.connect(from_canonical) as b:
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
    if not (plan.new_functions or plan.forward or plan.todo):
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
        print("nothing to do: the migrations build what sql/ describes")
        return 0
    count = len(plan.new_functions) + len(plan.forward)
    print(f"wrote {path.name} and its rollback: {count} statement(s)")
    for item in plan.todo:
        print(f"TODO (by hand): {item}", file=sys.stderr)
    print(
        "review them, then `make snapshot`, `make lock-table` and the tests (docs/contributing.md)"
    )
    return 1 if plan.todo else 0


if __name__ == "__main__":
    sys.exit(main())
