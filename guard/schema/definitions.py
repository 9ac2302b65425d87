"""Definitions applied from sql/: functions, views, triggers, policies, registry rows, grants,
schedule and comments (docs/dba.md, "Applying" and "Booking Guard's own rows"). sql/manifest.txt
is a creation order, so its reverse is a drop order. What CREATE OR REPLACE refuses is dropped and
created again with the Booking Guard definitions that depend on it (anything else depending on it
stops the apply). A migration that changes an object behind its record marks the record STALE
(`forget`), so the next apply runs it again. A release keeps its definitions with it
(migrations/releases/<version>.definitions.json.gz): a versioned rollback restores tables only."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from guard.connection import scalar
from guard.errors import GuardError, first_line
from guard.resources import canonical_files, migrations_dir, snapshot_path, sql_dir
from guard.schema import catalog
from guard.schema.catalog import REGISTRIES
from guard.schema.drift import Difference, compare

# folder under sql/ -> kind of object its files define
DEFINITION_FOLDERS = {
    "functions": "function",
    "views": "view",
    "checks": "view",
    "triggers": "trigger",
    "policies": "policy",
    "grants": "grants",
    "jobs": "schedule",
    "comments": "comments",
    "data": "rows",
    # sql/checks/ before it moved: release 0.2.0 and older records name it, and without it an
    # apply would take them for removed files.
    "detection": "view",
}
# Kinds that define no object of their own and run, in this order, whenever anything was applied:
# DROP and CREATE lose privileges and comments, a new table has no grants, a job's command may
# have changed (the schedule reads guard.jobs, so the rows come first).
CLOSING = ("rows", "grants", "schedule", "comments")
# Kinds whose statements lock their table against the application's writes until commit
# (CREATE TRIGGER, CREATE POLICY): they run last, so that a writer waits only for the record
# and the check behind them, not for the grants and comments too.
LOCKING = ("trigger", "policy")
TABLE = "guard.definitions"
ROWS_FROM_MIGRATIONS = "registry_rows_from_migrations"  # a key of the stored snapshot
CHECKOUT = "sql/"  # guard.definitions.source of definitions applied from the checkout
# The sha256 of a record whose object a migration changed since: no file has it, so every apply
# (of any version of Booking Guard) runs it again.
STALE = "0" * 64

# CREATE OR REPLACE cannot make this change in place: drop and create again.
_NOT_REPLACEABLE = (
    psycopg.errors.InvalidFunctionDefinition,  # 42P13: result type, parameter names, defaults
    psycopg.errors.InvalidTableDefinition,  # 42P16: a view's columns
    psycopg.errors.WrongObjectType,  # 42809: a function became a procedure
)


# The fixed oids of pg_proc and pg_class (a catalog address is the catalog's oid and the row's).
_PG_PROC, _PG_CLASS = 1255, 1259


class DefinitionError(GuardError):
    """A definition could not be applied; nothing of the transaction is kept."""


_CREATE_FUNCTION = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\b", re.I | re.M)


@dataclass(frozen=True)
class Definition:
    """One file under sql/ that defines a function, view, trigger, policy or the grants."""

    path: str  # relative to sql/, e.g. functions/guard.setting.sql
    text: str

    # computed once: an apply asks each definition for them again and again
    @cached_property
    def kind(self) -> str:
        return DEFINITION_FOLDERS[self.path.split("/", 1)[0]]

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def identity(self) -> tuple[str, ...]:
        """The object, from the file name: (schema, [table,] name), () for the closing kinds."""
        if self.closing:
            return ()
        parts = Path(self.path).name.removesuffix(".sql").split(".")
        expected = 3 if self.kind in ("trigger", "policy") else 2
        if len(parts) != expected:
            raise DefinitionError(
                f"{self.path}: a {self.kind} file is named "
                + ("schema.table.name.sql" if expected == 3 else "schema.name.sql")
            )
        return tuple(parts)

    @property
    def closing(self) -> bool:
        return self.kind in CLOSING

    @property
    def instances(self) -> int:
        """How many objects the file creates: one, or a function's forms (overloads)."""
        if self.kind != "function":
            return 1
        return max(1, len(_CREATE_FUNCTION.findall(self.text)))

    @property
    def label(self) -> str:
        """`function guard.setting`, `trigger x on public.calls`."""
        if self.kind in ("trigger", "policy"):
            schema, table, name = self.identity
            return f"{self.kind} {name} on {schema}.{table}"
        if self.closing:
            return self.kind
        return f"{self.kind} {'.'.join(self.identity)}"


def is_definition(path: str) -> bool:
    return path.split("/", 1)[0] in DEFINITION_FOLDERS


def checkout_definitions(root: Path | None = None) -> list[Definition]:
    """The definitions of sql/ (or of `root`), in manifest order."""
    root = root or sql_dir()
    named = [(file.relative_to(root).as_posix(), file) for file in canonical_files(root)]
    return [Definition(name, file.read_text()) for name, file in named if is_definition(name)]


def digest(definitions: Iterable[Definition]) -> str:
    """One sha256 over a set of definitions (paths and texts, in order)."""
    whole = hashlib.sha256()
    for definition in definitions:
        whole.update(f"{definition.path}\0{definition.sha256}\n".encode())
    return whole.hexdigest()


# -- releases ----------------------------------------------------------------------------------


def bundle_path(version: str, directory: Path | None = None) -> Path:
    return (directory or migrations_dir()) / "releases" / f"{version}.definitions.json.gz"


def read_bundle(version: str, directory: Path | None = None) -> list[Definition] | None:
    """A release's definitions, or None for a release whose migrations carry them."""
    source = bundle_path(version, directory)
    if not source.exists():
        return None
    data: dict[str, Any] = json.loads(gzip.decompress(source.read_bytes()))
    return [Definition(str(d["path"]), str(d["text"])) for d in data["definitions"]]


# -- the database ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What applying a set of definitions did."""

    source: str = CHECKOUT
    applied: list[str] = field(default_factory=list)  # paths run (changed, new or missing)
    recreated: list[str] = field(default_factory=list)  # dependents dropped and run again
    dropped: list[str] = field(default_factory=list)  # removed files whose object was dropped
    moved: list[str] = field(default_factory=list)  # files recorded under another path, not run
    closing: int = 0  # how many files of registry rows, grants, schedule and comments ran
    rows_deleted: list[str] = field(default_factory=list)  # `checks x`: gone with a rollback

    @property
    def changed(self) -> bool:
        """Anything done: to the catalog, or to the record alone (a moved file)."""
        return self.touched_catalog or bool(self.moved)

    @property
    def touched_catalog(self) -> bool:
        return bool(
            self.applied or self.recreated or self.dropped or self.closing or self.rows_deleted
        )

    def summary(self, names: int = 6) -> str:
        """One line: `definitions  3 applied (a, b, c); 1 dropped (d) from sql/`."""

        def listed(paths: list[str]) -> str:
            shown = ", ".join(paths[:names])
            return shown + (f" and {len(paths) - names} more" if len(paths) > names else "")

        parts = [
            f"{len(paths)} {verb} ({listed(paths)})"
            for verb, paths in (
                ("applied", self.applied),
                ("re-created", self.recreated),
                ("dropped", self.dropped),
                ("moved", self.moved),
                ("registry rows deleted", self.rows_deleted),
            )
            if paths
        ]
        if self.closing:  # they run with any change (and alone after a migration)
            parts.append(f"{closing_files(self.closing)} applied")
        return f"definitions  {'; '.join(parts or ['none changed'])} from {self.source}"


def closing_files(count: int) -> str:
    """How apply and its dry run count the closing files."""
    return f"{count} files of registry rows, grants, schedule and comments"


@dataclass(frozen=True)
class Recorded:
    path: str
    kind: str
    identity: tuple[str, ...]
    sha256: str
    position: int


def recorded(conn: psycopg.Connection[Any]) -> list[Recorded] | None:
    """What guard.definitions says was applied, in position order; None before the table."""
    if not catalog.exists(conn, TABLE):
        return None
    rows = conn.execute(
        "SELECT path, kind, sha256, position FROM guard.definitions ORDER BY position, path"
    ).fetchall()
    return [
        Recorded(path, kind, Definition(path, "").identity if is_definition(path) else (), sha, n)
        for path, kind, sha, n in rows
    ]


def recorded_source(conn: psycopg.Connection[Any]) -> str | None:
    rows = catalog.rows_once(conn, TABLE, "SELECT min(source) FROM guard.definitions")
    return rows[0][0] if rows else None


def pending(conn: psycopg.Connection[Any], definitions: list[Definition]) -> list[str]:
    """Paths that an apply of `definitions` would run or drop (none before guard.definitions
    records any). Read-only."""
    done = recorded(conn)
    if done is None:
        return []
    applier = _Applier(conn, definitions, done, CHECKOUT, lambda: None)
    counts = _counts(conn, definitions)
    found = [
        d.path for d in definitions if d.path in applier.moved_from or applier.reason(d, counts)
    ]
    return found + [r.path for r in done if r.path not in applier.wanted_paths]


@dataclass
class Plan:
    """What an apply of a set of definitions would do (`guard db apply --dry-run`)."""

    source: str = CHECKOUT
    run: list[tuple[Definition, str]] = field(default_factory=list)  # each with why it runs
    dropped: list[tuple[str, str, list[str]]] = field(default_factory=list)  # path, label, SQL
    # path -> the definitions re-created with its object, should CREATE OR REPLACE refuse
    recreated_if_refused: dict[str, list[str]] = field(default_factory=dict)
    # path -> what is not Booking Guard's and depends on its object: such a change stops the apply
    stopped_by: dict[str, list[str]] = field(default_factory=dict)
    # files recorded under another path, unchanged: only the record moves (path, recorded path)
    moved: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.run or self.dropped or self.moved)


def plan(
    conn: psycopg.Connection[Any],
    definitions: list[Definition],
    *,
    source: str = CHECKOUT,
    migrations_ran: bool = False,
) -> Plan:
    """What `apply` would run and drop, judged from the catalog and the record as they are now
    (read-only: a migration that runs first may mark more STALE)."""
    counts = _counts(conn, definitions)
    applier = _Applier(conn, definitions, recorded(conn) or [], source, lambda: None)
    reasons = {d.path: applier.reason(d, counts) for d in definitions}
    outcome = Plan(source=source)
    closing_runs = applier.closing_due(any(reasons.values()), migrations_ran)
    # in the order apply runs them: the objects, the closing kinds, then the LOCKING kinds
    for definition in sorted(definitions, key=lambda d: 2 if d.kind in LOCKING else d.closing):
        reason = reasons[definition.path]
        if definition.closing and closing_runs and reason is None:
            reason = "runs whenever anything is applied"
        if reason is None:
            continue
        outcome.run.append((definition, reason))
        if definition.kind in ("function", "view") and counts.get(definition.path) == (
            definition.instances
        ):
            ours, theirs = _dependents(conn, _object_oids(conn, definition), applier.managed)
            if ours:
                outcome.recreated_if_refused[definition.path] = list(ours)
            if theirs:
                outcome.stopped_by[definition.path] = theirs
    outcome.moved = [
        (path, previous.path)
        for path, previous in applier.moved_from.items()
        if reasons[path] is None
    ]
    for gone in applier.removed:
        statements = _drop_statements(conn, gone.kind, gone.identity)
        label = Definition(gone.path, "").label
        outcome.dropped.append((gone.path, label, [s.as_string(conn) for s in statements]))
    return outcome


def _dependents(
    conn: psycopg.Connection[Any],
    objects: list[tuple[int, int]],
    managed: dict[tuple[str, tuple[str, ...]], str],
) -> tuple[dict[str, tuple[str, tuple[str, ...]]], list[str]]:
    """What depends on `objects` (catalog addresses), at any depth: Booking Guard's definitions
    (path -> kind and identity) and the descriptions of everything else."""
    ours: dict[str, tuple[str, tuple[str, ...]]] = {}
    theirs: list[str] = []
    seen: set[tuple[int, int]] = set()
    queue = list(objects)
    while queue:
        classid, objid = queue.pop()
        rows = conn.execute(_DEPENDENTS, {"classid": classid, "objid": objid}).fetchall()
        for kind, identity, dep_class, dep_id, description in rows:
            if (int(dep_class), int(dep_id)) in seen:
                continue
            seen.add((int(dep_class), int(dep_id)))
            key = (kind, tuple(identity or ()))
            path = managed.get(key)
            if path is None:
                theirs.append(str(description))
                continue
            ours.setdefault(path, key)
            queue.append((int(dep_class), int(dep_id)))
    return ours, theirs


def _object_oids(conn: psycopg.Connection[Any], definition: Definition) -> list[tuple[int, int]]:
    """The catalog addresses of a function's forms or of a view."""
    if definition.kind == "function":
        return [(_PG_PROC, oid) for oid in _function_forms(conn, definition.identity)]
    oid = scalar(conn, "SELECT to_regclass(%s)::oid::bigint", (".".join(definition.identity),))
    return [] if oid is None else [(_PG_CLASS, int(oid))]


def apply(
    conn: psycopg.Connection[Any],
    definitions: list[Definition],
    *,
    source: str = CHECKOUT,
    known: list[Recorded] | None = None,
    migrations_ran: bool = False,
    snapshot: catalog.Snapshot | None = None,
    snapshot_digest: str | None = None,
    arm: Callable[[], None] = lambda: None,
    restoring: bool = False,
    batched: bool = False,
) -> Outcome:
    """Apply `definitions` inside the caller's transaction and check the result (DefinitionError).
    `known`: what is defined, when a rollback dropped guard.definitions; `migrations_ran`: new
    tables need the grants; `arm`: the migrator's lock-wait budget, before each file and drop;
    `restoring`: a rollback to a release, which deletes the registry rows it does not define;
    `batched`: an install, where nobody waits for a lock, runs each step as one statement."""
    done = recorded(conn)
    if done is None:
        done = known or []
    applier = _Applier(conn, definitions, done, source, arm, batched=batched)
    applier.run([d for d in definitions if not d.closing and d.kind not in LOCKING])
    # The LOCKING definitions that will run, decided before the closing kinds run.
    locking = [d for d in definitions if d.kind in LOCKING]
    locking_counts = _counts(conn, locking)
    locking_pending = [d for d in locking if applier.needs_run(d, locking_counts)]
    changed = any(applier._changed(d) for d in definitions if d.closing)
    if applier.closing_due(
        changed or applier.outcome.touched_catalog or bool(locking_pending),
        migrations_ran,
    ):
        applier.run_closing()
    if restoring:
        applier.delete_rows_not_defined()
    # Recorded before the LOCKING kinds, which make the application's writes wait until commit.
    if catalog.exists(conn, TABLE):
        _record(conn, definitions, source)
    applier.run(locking_pending)
    for gone in applier.removed:
        if gone.path not in applier.outcome.dropped:
            applier.drop(gone.kind, gone.identity, gone.path)
            applier.outcome.dropped.append(gone.path)
    _check(conn, definitions, snapshot, snapshot_digest, applier)
    # after the check, which may have run one again: the moved files that did not run, whose
    # record alone moves (_record)
    applier.outcome.moved = [path for path in applier.moved_from if not applier.ran(path)]
    return applier.outcome


class _Applier:
    """One apply: the definitions wanted, what was defined before, and what was done."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        definitions: list[Definition],
        done: list[Recorded],
        source: str,
        arm: Callable[[], None],
        *,
        batched: bool = False,
    ) -> None:
        self.conn = conn
        self.arm = arm
        self.batched = batched
        self.definitions = definitions
        self.done = {r.path: r for r in done}
        self.outcome = Outcome(source=source)
        wanted = {(d.kind, d.identity) for d in definitions if not d.closing}
        self.wanted_paths = {d.path for d in definitions}
        self.removed = [
            r
            for r in sorted(done, key=lambda r: r.position, reverse=True)
            if r.kind not in CLOSING
            and r.path not in self.wanted_paths
            and (r.kind, r.identity) not in wanted
        ]
        # A file recorded under a path no file has now (it moved): compared with that record.
        recorded_objects = {
            (r.kind, r.identity): r
            for r in done
            if r.kind not in CLOSING and r.identity and r.path not in self.wanted_paths
        }
        self.moved_from = {
            d.path: recorded_objects[(d.kind, d.identity)]
            for d in definitions
            if not d.closing
            and d.path not in self.done
            and (d.kind, d.identity) in recorded_objects
        }
        # What may be dropped to let another change.
        self.managed: dict[tuple[str, tuple[str, ...]], str] = {
            (r.kind, r.identity): r.path for r in self.removed
        }
        self.managed.update({(d.kind, d.identity): d.path for d in definitions})
        self.position = {d.path: n for n, d in enumerate(definitions)}
        self.position.update({r.path: len(definitions) + r.position for r in self.removed})
        self.dropped_for_rerun: set[str] = set()

    def run(self, due: list[Definition]) -> None:
        """Run those of `due` that need it (an install: all of them, as one statement)."""
        if self.batched and not self.done and self._batch(due):
            self.outcome.applied += [d.path for d in due]
            return
        counts = _counts(self.conn, due)
        for definition in due:  # one may drop a later one (dropped_for_rerun) as it runs
            if self.needs_run(definition, counts):
                rerun = definition.path in self.dropped_for_rerun
                changed = self._changed(definition)
                self._run(definition)
                done = self.outcome.recreated if rerun and not changed else self.outcome.applied
                done.append(definition.path)

    def _batch(self, batch: list[Definition]) -> bool:
        """Run `batch` as one statement in a savepoint; False when it fails."""
        if len(batch) < 2:
            return False
        self.arm()
        try:
            with self.conn.transaction():
                self.conn.execute("\n;\n".join(d.text for d in batch).encode())
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
            raise  # the migrator retries the whole transaction
        except psycopg.Error:
            return False
        return True

    def _changed(self, definition: Definition) -> bool:
        previous = self.done.get(definition.path) or self.moved_from.get(definition.path)
        return previous is None or previous.sha256 != definition.sha256

    def needs_run(self, definition: Definition, counts: dict[str, int]) -> bool:
        return definition.path in self.dropped_for_rerun or bool(self.reason(definition, counts))

    def reason(self, definition: Definition, counts: dict[str, int]) -> str | None:
        """Why `definition` runs, or None; `counts`: its objects in the catalog, by path."""
        previous = self.done.get(definition.path)
        if previous is not None and previous.sha256 == STALE:
            return "a migration changed its object since it was applied"
        if self._changed(definition):
            return "new" if previous is None else "changed since it was applied"
        count = counts.get(definition.path, definition.instances)
        if count < definition.instances:
            return "missing from the database"
        if count > definition.instances:
            return f"{count} objects of that name in the database"
        return None

    def closing_due(self, changed: bool, migrations_ran: bool) -> bool:
        """Whether the closing kinds run."""
        return changed or bool(self.removed) or migrations_ran or not self.done

    def run_closing(self) -> None:
        closing = [d for d in self.definitions if d.closing]
        for definition in closing:
            if definition.kind == "rows":
                self._run_rows(definition)
        others = [d for d in closing if d.kind != "rows"]
        if not (self.batched and self._batch(others)):
            for definition in others:
                self._execute(definition)
        self.outcome.closing += len(closing)
        # A rule's stage follows its constraints, which may be NOT VALID (I5's customer keys).
        self.conn.execute("SELECT guard.refresh_rule_stages()")

    def _run_rows(self, definition: Definition) -> None:
        """Run a data file and record the registry rows it created (not the ones it found)."""
        before = registry_keys(self.conn)
        self._execute(definition)
        created = sorted(registry_keys(self.conn) - before)
        if created and catalog.exists(self.conn, "guard.registry_rows"):
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO guard.registry_rows (registry, key, path) VALUES (%s, %s, %s)"
                    " ON CONFLICT (registry, key) DO UPDATE SET path = EXCLUDED.path",
                    [(registry, key, definition.path) for registry, key in created],
                )

    def delete_rows_not_defined(self) -> None:
        """Delete the registry rows data files created that these data files do not define: found
        by running them again in a savepoint after deleting every created row, then undone, so
        the rows kept keep their operator's values."""
        created = catalog.rows_created_by_data(self.conn)
        if not created:
            return
        defined: set[tuple[str, str]] = set()
        data_files = [d for d in self.definitions if d.kind == "rows"]
        if data_files:
            with self.conn.transaction(force_rollback=True):
                self._delete_registry_rows(created)
                for definition in data_files:
                    self._execute(definition)
                defined = created & registry_keys(self.conn)
        gone = sorted(created - defined)
        self._delete_registry_rows(set(gone))
        self.outcome.rows_deleted = [f"{registry} {key}" for registry, key in gone]

    def ran(self, path: str) -> bool:
        return path in self.outcome.applied or path in self.outcome.recreated

    def repair(self, paths: list[str]) -> None:
        """Run again the definitions the check found unlike the snapshot, then the closing kinds."""
        wanted = set(paths)
        earlier = set(self.dropped_for_rerun)  # dropped and run again before: done
        for definition in self.definitions:  # manifest order: what depends on it comes later
            if definition.closing:
                continue
            if definition.path in wanted or (
                definition.path in self.dropped_for_rerun and definition.path not in earlier
            ):
                self._run(definition)
                self.outcome.applied.append(definition.path)
        self.run_closing()

    def _run(self, definition: Definition) -> None:
        """Run one file; where CREATE OR REPLACE refuses, drop the object and run it again."""
        conn = self.conn
        before = _function_forms(conn, definition.identity) if definition.kind == "function" else {}
        try:
            self._execute(definition)
        except DefinitionError as error:
            if not isinstance(error.__cause__, _NOT_REPLACEABLE):
                raise
            self._drop_with_dependents(definition, _object_oids(conn, definition))
            self._execute(definition)
        if before:  # a new function has no old forms to drop
            after = _function_forms(conn, definition.identity)
            # New parameter types make a form beside the old ones, which go: a form the file
            # replaced has a new row version (xmin), one it left alone is old.
            if set(after) - set(before):
                old_forms = [oid for oid, version in before.items() if after.get(oid) == version]
                self._drop_with_dependents(definition, [(_PG_PROC, o) for o in old_forms])

    def _drop_with_dependents(self, definition: Definition, objects: list[tuple[int, int]]) -> None:
        """Drop `objects` (the old forms of `definition`'s object) and every Booking Guard
        object that depends on them, newest first; anything else depending on them stops the
        apply."""
        dependents, theirs = _dependents(self.conn, objects, self.managed)
        if theirs:
            raise DefinitionError(
                f"{definition.path}: cannot replace {definition.label}: {theirs[0]} depends on"
                " it and is not one of Booking Guard's definitions: drop it first, or make this"
                " change in a versioned migration"
            )
        for path in sorted(dependents, key=lambda p: self.position[p], reverse=True):
            kind, identity = dependents[path]
            self.drop(kind, identity, path)
            if path in self.wanted_paths:
                self.dropped_for_rerun.add(path)
            else:
                self.outcome.dropped.append(path)
        for classid, objid in objects:
            if classid == _PG_PROC:
                statement = _drop_function(self.conn, objid)
            else:
                statement = sql.SQL("DROP VIEW {}").format(sql.Identifier(*definition.identity))
            self._sql(statement, definition.path)

    def _execute(self, definition: Definition) -> None:
        # no parameters: the simple-query protocol runs every statement of the file
        self._sql(definition.text.encode(), definition.path)

    def _sql(self, statement: sql.Composed | bytes, path: str, params: Any = None) -> None:
        """Run one file, drop or delete in a savepoint; any error but a lock timeout names the
        file (or what it did)."""
        self.arm()
        try:
            with self.conn.transaction():
                self.conn.execute(statement, params)
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as error:
            raise DefinitionError(f"{path}: {first_line(error)}") from error

    def drop(self, kind: str, identity: tuple[str, ...], path: str) -> None:
        """Drop a definition's object if it is there."""
        for statement in _drop_statements(self.conn, kind, identity):
            self._sql(statement, path)

    def _delete_registry_rows(self, rows: set[tuple[str, str]]) -> None:
        """Delete registry rows and their records in guard.registry_rows."""
        for registry, (table, column) in REGISTRIES.items():
            keys = sorted(key for kind, key in rows if kind == registry)
            if keys:
                delete = sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                    sql.Identifier(*table.split(".")), sql.Identifier(column)
                )
                self._sql(delete, "deleting registry rows", (keys,))
                self._sql(
                    b"DELETE FROM guard.registry_rows WHERE registry = %s AND key = ANY(%s)",
                    "deleting registry rows",
                    (registry, keys),
                )


def registry_keys(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    """Every (registry, key) of Booking Guard's registries."""
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, {}::text FROM {}").format(
            sql.Literal(registry),
            sql.Identifier(column),
            sql.Identifier(*table.split(".")),
        )
        for registry, (table, column) in REGISTRIES.items()
    )
    return {(str(r), str(k)) for r, k in conn.execute(query).fetchall()}


def _counts(conn: psycopg.Connection[Any], definitions: list[Definition]) -> dict[str, int]:
    """path -> how many objects the catalog has for each definition of an object (one query:
    the check before commit runs while the transaction holds its locks)."""
    objects = [d for d in definitions if not d.closing]
    found = _look_up(conn, [(d.kind, d.identity) for d in objects], prints=False)
    return {d.path: count for d, (count, _) in zip(objects, found, strict=True)}


def _look_up(
    conn: psycopg.Connection[Any], objects: list[tuple[str, tuple[str, ...]]], *, prints: bool
) -> list[tuple[int, str | None]]:
    """For each (kind, identity): its catalog rows, counted and (`prints`) fingerprinted."""
    if not objects:
        return []
    rows = conn.execute(
        _LOOK_UP,
        {
            "prints": prints,
            "kinds": [kind for kind, _ in objects],
            "schemas": [identity[0] for _, identity in objects],
            "tables": [identity[1] if len(identity) == 3 else None for _, identity in objects],
            "names": [identity[-1] for _, identity in objects],
        },
    ).fetchall()
    return [(int(count), fingerprint) for ((count, fingerprint),) in rows]


# For each object: how many catalog rows define it, and (with prints) a fingerprint of them.
_LOOK_UP = """
SELECT CASE w.kind
    WHEN 'function' THEN (
        SELECT ARRAY[count(*)::text, string_agg(
            CASE WHEN %(prints)s THEN md5(p::text) END, ',' ORDER BY p.oid)]
        FROM pg_catalog.pg_proc AS p
        JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = w.schema_name AND p.proname = w.object_name)
    WHEN 'view' THEN (
        SELECT ARRAY[count(*)::text, string_agg(
            CASE WHEN %(prints)s THEN md5(r::text || coalesce(c.reloptions::text, '')) END, ','
            ORDER BY r.oid)]
        FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_rewrite AS r ON r.ev_class = c.oid
        WHERE n.nspname = w.schema_name AND c.relname = w.object_name AND c.relkind = 'v')
    WHEN 'trigger' THEN (
        SELECT ARRAY[count(*)::text, string_agg(
            CASE WHEN %(prints)s THEN md5(t::text) END, ',' ORDER BY t.oid)]
        FROM pg_catalog.pg_trigger AS t
        JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = w.schema_name AND c.relname = w.table_name
          AND t.tgname = w.object_name AND NOT t.tgisinternal)
    WHEN 'policy' THEN (
        SELECT ARRAY[count(*)::text, string_agg(CASE WHEN %(prints)s THEN
            md5(p::text || c.relrowsecurity::text || c.relforcerowsecurity::text) END, ','
            ORDER BY p.oid)]
        FROM pg_catalog.pg_policy AS p
        JOIN pg_catalog.pg_class AS c ON c.oid = p.polrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = w.schema_name AND c.relname = w.table_name
          AND p.polname = w.object_name)
    END
FROM unnest(%(kinds)s::text[], %(schemas)s::text[], %(tables)s::text[], %(names)s::text[])
    WITH ORDINALITY AS w (kind, schema_name, table_name, object_name, position)
ORDER BY w.position
"""


# -- what a versioned migration did to the definitions on record ---------------------------------


def fingerprints(conn: psycopg.Connection[Any], records: list[Recorded]) -> dict[str, str | None]:
    """path -> a fingerprint of each record's object (None: absent): its catalog rows, never a
    deparsed text, since reading them locks no table; a re-created object differs too."""
    objects = [r for r in records if r.kind not in CLOSING and r.identity]
    found = _look_up(conn, [(r.kind, r.identity) for r in objects], prints=True)
    return {r.path: fingerprint for r, (_, fingerprint) in zip(objects, found, strict=True)}


def touched(
    conn: psycopg.Connection[Any], records: list[Recorded], before: dict[str, str | None]
) -> list[str]:
    """The paths among `before` whose object changed since it was fingerprinted."""
    after = fingerprints(conn, [r for r in records if r.path in before])
    return [path for path, print_ in before.items() if after.get(path) != print_]


def forget(conn: psycopg.Connection[Any], paths: list[str]) -> None:
    """Mark these records STALE: the next apply runs their files again."""
    if paths and catalog.exists(conn, TABLE):
        conn.execute(
            "UPDATE guard.definitions SET sha256 = %s WHERE path = ANY(%s)", (STALE, paths)
        )


def _function_forms(conn: psycopg.Connection[Any], identity: tuple[str, ...]) -> dict[int, str]:
    """oid -> row version (xmin) of each form of a function name."""
    rows = conn.execute(
        "SELECT p.oid::bigint, p.xmin::text FROM pg_catalog.pg_proc AS p"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = %s",
        identity,
    ).fetchall()
    return {int(oid): str(version) for oid, version in rows}


# What depends on an object, one level down: kind and identity (NULL: not a kind of definition),
# the catalog address to look further from, and its description.
_DEPENDENTS = """
SELECT DISTINCT
    CASE d.classid
        WHEN 'pg_catalog.pg_rewrite'::regclass THEN CASE WHEN vc.relkind = 'v' THEN 'view' END
        WHEN 'pg_catalog.pg_proc'::regclass THEN 'function'
        WHEN 'pg_catalog.pg_trigger'::regclass THEN 'trigger'
        WHEN 'pg_catalog.pg_policy'::regclass THEN 'policy'
    END AS kind,
    -- a view's rule is named [schema, view, _RETURN]
    a.object_names[1:CASE WHEN r.oid IS NULL THEN 3 ELSE 2 END] AS identity,
    coalesce(vc.tableoid, d.classid)::oid::bigint AS classid,
    coalesce(vc.oid, d.objid)::bigint AS objid,
    pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS description
FROM pg_catalog.pg_depend AS d
LEFT JOIN pg_catalog.pg_rewrite AS r
    ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_catalog.pg_class AS vc ON vc.oid = r.ev_class
CROSS JOIN LATERAL pg_catalog.pg_identify_object_as_address(d.classid, d.objid, d.objsubid) AS a
WHERE d.refclassid = %(classid)s AND d.refobjid = %(objid)s AND d.deptype = 'n'
  AND NOT (d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.ev_class = %(objid)s)
"""


def _drop_function(conn: psycopg.Connection[Any], oid: int) -> sql.Composed:
    """DROP FUNCTION for one form of a function, named with its argument types."""
    signature = scalar(conn, "SELECT %s::oid::regprocedure::text", (oid,))
    return sql.SQL("DROP FUNCTION {}").format(sql.SQL(str(signature)))


def _drop_statements(
    conn: psycopg.Connection[Any], kind: str, identity: tuple[str, ...]
) -> list[sql.Composed]:
    """The statements that drop a definition's object as it is now (none: its table is gone)."""
    if kind == "function":
        return [_drop_function(conn, oid) for oid in sorted(_function_forms(conn, identity))]
    if kind == "view":
        return [sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(*identity))]
    if not catalog.exists(conn, f"{identity[0]}.{identity[1]}"):
        return []
    verb = {"trigger": "TRIGGER", "policy": "POLICY"}[kind]
    return [
        sql.SQL("DROP {} IF EXISTS {} ON {}").format(
            sql.SQL(verb), sql.Identifier(identity[2]), sql.Identifier(identity[0], identity[1])
        )
    ]


def _record(conn: psycopg.Connection[Any], definitions: list[Definition], source: str) -> None:
    conn.execute(
        "DELETE FROM guard.definitions WHERE path <> ALL(%s)", ([d.path for d in definitions],)
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO guard.definitions (path, kind, position, sha256, source)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (path) DO UPDATE SET kind = EXCLUDED.kind,"
            " position = EXCLUDED.position, source = EXCLUDED.source,"
            " sha256 = EXCLUDED.sha256,"
            " applied_at = CASE WHEN guard.definitions.sha256 = EXCLUDED.sha256"
            " THEN guard.definitions.applied_at ELSE now() END,"
            " applied_by = CASE WHEN guard.definitions.sha256 = EXCLUDED.sha256"
            " THEN guard.definitions.applied_by ELSE current_user END",
            [(d.path, d.kind, number, d.sha256, source) for number, d in enumerate(definitions)],
        )


# -- the check before commit -------------------------------------------------------------------


def stored_snapshot() -> tuple[catalog.Snapshot, str | None]:
    """The stored canonical snapshot and the digest of the definitions it was made from."""
    try:
        loaded: dict[str, Any] = json.loads(snapshot_path().read_text())
    except FileNotFoundError:
        raise GuardError(
            f"canonical snapshot {snapshot_path()} is missing (run `make generated`)"
        ) from None
    made_from = loaded.pop("definitions_sha256", None)
    loaded.pop(ROWS_FROM_MIGRATIONS, None)
    return loaded, made_from


def rows_from_migrations() -> list[tuple[str, str]]:
    """The registry rows (registry, key) migrations create, stored with the snapshot."""
    loaded: dict[str, Any] = json.loads(snapshot_path().read_text())
    return [(registry, key) for registry, key in loaded.get(ROWS_FROM_MIGRATIONS, [])]


def _check(
    conn: psycopg.Connection[Any],
    definitions: list[Definition],
    snapshot: catalog.Snapshot | None,
    snapshot_digest: str | None,
    applier: _Applier | None = None,
) -> None:
    counts = _counts(conn, definitions)
    wrong = [
        f"{d.label} ({d.path}): {counts[d.path]} in the catalog"
        for d in definitions
        if not d.closing and counts[d.path] != d.instances
    ]
    if wrong:
        raise DefinitionError("after applying the definitions: " + "; ".join(wrong))
    if snapshot is None or snapshot_digest != digest(definitions):
        return
    adopted = catalog.adopted_tables(conn)
    if adopted:
        # The application's column types print the definitions with casts the canonical lacks.
        return
    actual = catalog.take(conn)
    expected = catalog.as_printed_by(conn, snapshot)
    differences = _unlike(expected, actual, definitions)
    if differences and applier is not None:
        # A record says a file was applied but its object differs (an older Booking Guard's
        # rollback, a hand edit): run the file now, once.
        drifted = [
            d.path
            for d in definitions
            if not d.closing and not applier.ran(d.path) and _unlike(expected, actual, [d])
        ]
        if drifted:
            applier.repair(drifted)
            _check(conn, definitions, snapshot, snapshot_digest)
            return
    if differences:
        lines = [line for d in differences[:20] for line in d.lines()]
        raise DefinitionError(
            "after applying the definitions the catalog differs from the canonical one"
            " (nothing was committed):\n  " + "\n  ".join(lines)
        )


def _unlike(
    expected: catalog.Snapshot, actual: catalog.Snapshot, definitions: list[Definition]
) -> list[Difference]:
    """How the objects of `definitions` differ from the snapshot (a DBA's extra grant is theirs)."""
    return [
        difference
        for difference in compare(
            restrict(expected, definitions), restrict(actual, definitions), set()
        )
        if not (difference.kind == "extra" and difference.subject.startswith("grant "))
    ]


def restrict(snapshot: catalog.Snapshot, definitions: list[Definition]) -> catalog.Snapshot:
    """Only the objects `definitions` define (the rest is the migrations', compared by verify)."""
    functions = {".".join(d.identity) for d in definitions if d.kind == "function"}
    views = {".".join(d.identity) for d in definitions if d.kind == "view"}
    plural = {"trigger": "triggers", "policy": "policies"}
    parts: dict[str, dict[str, set[str]]] = {"triggers": {}, "policies": {}}
    for d in definitions:
        if d.kind in plural:
            table = f"{d.identity[0]}.{d.identity[1]}"
            parts[plural[d.kind]].setdefault(table, set()).add(d.identity[2])
    relations: dict[str, Any] = {}
    for name, relation in snapshot["relations"].items():
        if name in views:
            relations[name] = relation
        elif name in parts["triggers"] or name in parts["policies"]:
            relations[name] = {
                **{key: relation[key] for key in ("kind", "rls", "force_rls")},
                **{key: {} for key in ("columns", "constraints", "indexes")},
                "view_def": None,
                "options": [],
                **{
                    part: {k: v for k, v in relation[part].items() if k in wanted.get(name, ())}
                    for part, wanted in parts.items()
                },
            }
    functions_kept = {
        key: value
        for key, value in snapshot["functions"].items()
        if key.split("(", 1)[0] in functions
    }
    empty = ("schemas", "roles", "sequences", "settings", "rules", "checks", "role_grants")
    return {"relations": relations, "functions": functions_kept, "types": {}} | {
        key: [] for key in empty
    }
