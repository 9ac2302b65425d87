"""Applying and rolling back the yoyo migrations, safely (docs/dba.md, "Applying" and "Rolling
back"). yoyo reads the migrations; this module runs them:
- a migration, its bookkeeping and its checksum commit in one transaction (yoyo's two
  connections leave a crash in between applied but unmarked);
- a session-level advisory lock instead of yoyo's lock row, so `kill -9` leaves no lock behind;
- lock retries (guard.schema.lock_retry), the migration's transaction retried whole;
- definitions (guard.schema.definitions) belong to a level: the checkout's at the newest
  migration, a release's at its last one, none in between;
- an empty database is installed from sql/ in one transaction (`_install`)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri
from yoyo.utils import change_param_style

from guard.connection import behind_pooler, connect, pooler_refusal, scalar
from guard.errors import GuardError, first_line
from guard.resources import canonical_files, migrations_dir, sql_dir
from guard.schema import bridges, catalog, definitions, migration_files, privileges
from guard.schema.lock_retry import (
    AttemptOverTime,
    AttemptWatch,
    LockBudget,
    LockPolicy,
    run_with_lock_retries,
    set_session_timeouts,
)
from guard.schema.releases import checksum, release_levels

MIGRATION_TABLE = "_yoyo_migration"
LOCK_NAME = "booking-guard:migrations"
# The migration that creates guard.definitions: before it, migrations carry their definitions.
DEFINITIONS_RECORDED_FROM = "0031a_definitions_from_sql"
# Rows only migrations insert: an install runs the migration's statement after the table's file.
_ROWS_OF_MIGRATIONS = {
    "tables/guard.baseline_objects.sql": (
        "0002_booking_tables.sql",
        "INSERT INTO guard.baseline_objects",
    ),
    "tables/guard.metric_watermark.sql": (
        "0071_review_notices.sql",
        "INSERT INTO guard.metric_watermark",
    ),
}

# No relation outside the system schemas but yoyo's bookkeeping (created by the lock).
_EMPTY = """
SELECT to_regnamespace('guard') IS NULL AND NOT EXISTS (
    SELECT FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      AND c.relkind NOT IN ('i', 'I')
      AND c.relname NOT IN ('_yoyo_migration', '_yoyo_log', '_yoyo_version', 'yoyo_lock')
)
"""

_RECORD_CHECKSUM = (
    "INSERT INTO guard.migration_checksums (migration_id, sha256) VALUES (:id, :sha)"
    " ON CONFLICT (migration_id) DO UPDATE SET sha256 = EXCLUDED.sha256,"
    " applied_at = now(), applied_by = current_user"
)
# pg_cron's scheduler takes invalidation messages at least once per loop (MaxWait, 1 s).
PG_CRON_CATCH_UP_SECONDS = 2.0
# Whether pg_cron and guard's schedule are in this database, so that re-sending it means anything.
_SCHEDULED_BY_PG_CRON = (
    "SELECT to_regclass('cron.job') IS NOT NULL"
    " AND to_regprocedure('guard.schedule_jobs()') IS NOT NULL"
)

_CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.IGNORECASE)

# Tables and their columns (None: a table without any), compared by a rollback preview.
_COLUMNS = """
SELECT c.oid::bigint, n.nspname::text, c.relname::text, a.attname::text
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
"""

Progress = Callable[[str], None]
T = TypeVar("T")


# Every privilege guard.apply_grants may give (schema guard and its objects, public's tables).
_GRANTS_FINGERPRINT = """
SELECT md5(concat_ws(
    '|',
    (SELECT n.nspacl::text FROM pg_namespace AS n WHERE n.nspname = 'guard'),
    (SELECT string_agg(c.oid::text || ':' || coalesce(c.relacl::text, ''), ',' ORDER BY c.oid)
     FROM pg_class AS c WHERE c.relnamespace IN ('guard'::regnamespace, 'public'::regnamespace)),
    (SELECT string_agg(p.oid::text || ':' || coalesce(p.proacl::text, ''), ',' ORDER BY p.oid)
     FROM pg_proc AS p WHERE p.pronamespace = 'guard'::regnamespace),
    (SELECT string_agg(a.attrelid::text || '.' || a.attnum || ':' || a.attacl::text, ','
        ORDER BY a.attrelid, a.attnum)
     FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
     WHERE a.attacl IS NOT NULL
        AND c.relnamespace IN ('guard'::regnamespace, 'public'::regnamespace))
))
"""


@dataclass(frozen=True)
class MigrationState:
    """One migration as the database sees it."""

    id: str
    applied: bool
    edited: bool  # applied, and the file changed since
    checksum_recorded: bool
    in_directory: bool = True
    applied_at: datetime | None = None
    applied_by: str | None = None

    @property
    def checksum_state(self) -> str:
        if not self.applied:
            return ""
        if not self.checksum_recorded:
            return "not recorded"
        if not self.in_directory:
            return "file missing"
        return "EDITED since" if self.edited else "matches"

    @property
    def label(self) -> str:
        if not self.in_directory:
            return "applied, file missing"
        if not self.applied:
            return "pending"
        if self.edited:
            return "applied, EDITED since"
        if not self.checksum_recorded:
            return "applied, no checksum"
        return "applied, checksum ok"


class _Backend(PostgresqlPsycopgBackend):  # type: ignore[misc]
    """yoyo's psycopg 3 backend, on a connection we opened."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._supplied_connection = connection
        super().__init__(parse_uri("postgresql+psycopg://"), MIGRATION_TABLE)

    def connect(self, dburi: Any) -> psycopg.Connection[Any]:
        return self._supplied_connection


@dataclass
class RollbackPreview:
    """What a rollback would drop, found by running it in a transaction that is rolled back."""

    tables: list[tuple[str, int]] = field(default_factory=list)  # qualified name, rows
    columns: list[str] = field(default_factory=list)  # schema.table.column on kept tables
    not_previewed: list[str] = field(default_factory=list)  # non-transactional migrations
    error: str | None = None


@dataclass(frozen=True)
class PlannedMigration:
    """A pending migration as `guard db apply` would run it."""

    id: str
    transactional: bool  # False: `-- transactional: false`, each statement commits on its own
    statements: list[str]


@dataclass
class ApplyPlan:
    """What `guard db apply` would do, read in a READ ONLY transaction (a dry run)."""

    migrations: list[PlannedMigration] = field(default_factory=list)
    definitions: definitions.Plan | None = None
    definitions_with_last_migration: bool = False  # False: in a transaction of its own
    install: list[tuple[str, str]] = field(default_factory=list)  # an empty database's
    refusals: list[str] = field(default_factory=list)  # what would stop apply before it starts
    migrator_running: str | None = None  # another migrator holds the lock now

    @property
    def empty(self) -> bool:
        return not self.migrations and (self.definitions is None or not self.definitions.changed)


class OutOfOrderError(GuardError):
    """A pending migration is older than one already applied."""


class Migrator:
    """Runs migrations against one database; use as a context manager."""

    def __init__(
        self,
        database_url: str | None,
        directory: Path | None = None,
        *,
        lock_timeout_s: float = 30.0,
        lock_policy: LockPolicy | None = None,
        progress: Progress | None = None,
        sql_directory: Path | None = None,
        checkout_definitions: bool = True,
        install_when_empty: bool = False,
    ) -> None:
        self.database_url = database_url
        self.directory = directory or migrations_dir()
        self.sql_directory = sql_directory  # None: the sql/ shipped with Booking Guard
        # False: `make migration` builds the tables of the migrations alone, without sql/'s views
        self.checkout_definitions = checkout_definitions
        self.install_when_empty = install_when_empty  # `_install`, instead of replaying history
        self.lock_timeout_s = lock_timeout_s  # waiting for another migrator (advisory lock)
        self.lock_policy = lock_policy or LockPolicy()
        self.progress: Progress = progress or (lambda _line: None)
        # Called just before a transactional migration commits (observers of pg_locks).
        self.before_commit: Callable[[psycopg.Connection[Any], Any], None] | None = None
        # What the last apply or rollback did to the definitions (None: nothing was due).
        self.definitions_outcome: definitions.Outcome | None = None
        self.grants_restored = False  # an apply with nothing pending put back a grant
        self._conn: psycopg.Connection[Any] | None = None
        self._backend: Any = None
        self._watch: AttemptWatch | None = None
        self._cancels_before = 0  # the hold guard's cancels when the running attempt began
        self._said: list[str] = []  # the running migration's RAISE NOTICE / WARNING (`_hear`)
        self._budget: LockBudget | None = None  # the running attempt's
        self._pooled = False  # set by __enter__
        # What a rollback knows is defined, once it dropped guard.definitions (below 0031a).
        self._known: list[definitions.Recorded] | None = None

    def __enter__(self) -> Migrator:
        self._conn = connect(self.database_url, autocommit=True, application_name="guard db")
        self._conn.add_notice_handler(self._hear)
        try:
            # status and verify work through a pooler; apply and rollback refuse one (_locked)
            self._pooled = behind_pooler(self._conn)
            if not self._pooled:
                # A migrator killed mid-statement stops holding its locks within a second (not on
                # a pooled connection, where the setting would stay for the pooler's next client).
                self._conn.execute("SET client_connection_check_interval = '1s'")
            plpgsql = "SELECT count(*) > 0 FROM pg_extension WHERE extname = 'plpgsql'"
            if self._conn.execute(plpgsql).fetchone() != (True,):
                raise GuardError(
                    "missing extension plpgsql: Booking Guard's functions and triggers are written"
                    " in it; run CREATE EXTENSION plpgsql as a superuser"
                )
        except BaseException:
            self._conn.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            self._conn.close()

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "use Migrator as a context manager"
        return self._conn

    def migrations(self, known: str | None = None) -> Any:
        """The migrations of the directory, in order; `known`: an id that must be one of them."""
        if not self.directory.is_dir():
            raise GuardError(f"migrations directory {self.directory} does not exist")
        migrations = read_migrations(str(self.directory))
        for migration in migrations:  # yoyo learns it only by loading (splitting) the file
            migration.use_transactions = migration_files.transactional(migration)
        if known is not None and known not in {m.id for m in migrations}:
            raise GuardError(f"unknown migration {known!r}")
        return migrations

    def states(self) -> list[MigrationState]:
        applied_at = self._applied_at()
        rows = catalog.rows_once(
            self.conn,
            "guard.migration_checksums",
            "SELECT migration_id, sha256, applied_at, applied_by FROM guard.migration_checksums",
        )
        recorded = {migration_id: (sha, when, who) for migration_id, sha, when, who in rows}
        files = {migration.id: migration.path for migration in self.migrations()}
        states = []
        # the migrations of the directory in order, then the applied ones it no longer has
        for migration_id in [*files, *sorted(set(applied_at) - set(files))]:
            applied = migration_id in applied_at
            recorded_sum, when, who = recorded.get(migration_id, (None, None, None))
            states.append(
                MigrationState(
                    id=migration_id,
                    applied=applied,
                    edited=applied
                    and migration_id in files
                    and recorded_sum is not None
                    and recorded_sum != checksum(files[migration_id]),
                    checksum_recorded=recorded_sum is not None,
                    in_directory=migration_id in files,
                    applied_at=when or applied_at.get(migration_id),
                    applied_by=who,
                )
            )
        return states

    def apply(
        self, to: str | None = None, on_applied: Callable[[str], None] = lambda _id: None
    ) -> list[str]:
        """Apply pending migrations in order, up to and including `to`, and the definitions
        that belong at that level. Returns the ids applied; `on_applied` hears each one as it
        commits."""
        migrations = self.migrations(known=to)
        done: list[str] = []
        self.definitions_outcome = None
        with self._locked():
            self._yoyo.ensure_internal_schema_updated()  # its tables, before the first mark
            pending, level, wanted = self._pending(migrations, to)
            due = wanted is not None and (
                bool(pending) or bool(definitions.pending(self.conn, wanted[0]))
            )
            if not pending and not due:
                self.grants_restored = self._restore_grants()
                return done
            missing = privileges.missing_for_apply(self.conn)
            if missing:
                raise GuardError("nothing was applied: " + "; ".join(missing))
            privileges.act_as_owner_role(self.conn, self.progress)
            if self._installable(migrations, pending, level, wanted):
                assert wanted is not None
                done = self._install(migrations, wanted)
                for migration_id in done:
                    on_applied(migration_id)
                self._resend_pg_cron_schedule()
                return done
            step = None
            if due and wanted is not None:
                step = self._definitions_step(wanted, migrations_ran=bool(pending))
            # in the last migration's transaction, unless that one commits statement by statement
            with_last = bool(pending) and pending[-1].use_transactions
            with self._watching():
                for migration in pending:
                    then = step if with_last and migration is pending[-1] else None
                    try:
                        self._run_one(migration, "apply", then)
                    except GuardError as error:
                        if done:
                            raise GuardError(
                                f"{error}. The {len(done)} migration(s) before it in this run"
                                f" ({done[0]} to {done[-1]}) are applied and committed"
                            ) from None
                        raise
                    done.append(migration.id)
                    on_applied(migration.id)
                if step is not None and not with_last:
                    self._definitions_alone(step, "applying the definitions")
            self._resend_pg_cron_schedule()
        return done

    def _installable(
        self, migrations: Any, pending: Any, level: str | None, wanted: object
    ) -> bool:
        return (
            self.install_when_empty
            and wanted is not None
            and self.sql_directory is None
            and self.directory.resolve() == migrations_dir().resolve()
            and len(pending) == len(migrations)
            and level == migrations[-1].id
            and bool(self.conn.execute(_EMPTY).fetchone()[0])  # type: ignore[index]
        )

    def _install(
        self, migrations: Any, wanted: tuple[list[definitions.Definition], str]
    ) -> list[str]:
        """An empty database: the tables, types, constraints and roles of sql/ in one
        transaction, every migration recorded as applied, then the definitions step: what a
        replay of every migration leaves (tests/db/test_canonical.py), without running every
        definition each migration once carried."""
        files = self.install_files()
        step = self._definitions_step(wanted, migrations_ran=True, batched=True)
        from_migrations = definitions.rows_from_migrations()

        def attempt(lock_timeout_ms: int) -> None:
            self._said.clear()
            with self._attempt(lock_timeout_ms):
                # one statement: an empty database has nothing an application waits for
                self._execute("\n;\n".join(text for _name, text in files).encode())
                self._mark(migrations)
                self._settle_bridges()
                step()
                # What 0009 says on an empty database; "does not exist, skipping" is not news.
                self._said[:] = [s for s in self._said if not s.endswith(", skipping")]
                scheduled = self.conn.execute("SELECT guard.schedule_jobs()").fetchone()
                self._said.append(f"notice: {scheduled[0] if scheduled else ''}")
                self._arm()
                self.conn.execute(
                    "DELETE FROM guard.registry_rows AS r USING unnest(%s::text[], %s::text[])"
                    " AS m (registry, key) WHERE r.registry = m.registry AND r.key = m.key",
                    ([r for r, _ in from_migrations], [k for _, k in from_migrations]),
                )

        try:
            # no blocker watch nor hold guard: an empty database has no application session
            with self._failing_as("installing from sql/ failed, nothing was applied"):
                self._retrying(attempt, "installing from sql/")
        finally:
            for line in self._said:
                self.progress(f"install: {line}")
            self._said.clear()
        return [m.id for m in migrations]

    def install_files(self) -> list[tuple[str, str]]:
        """What an install runs before the definitions step, (name, SQL) in order."""
        root = sql_dir()
        files = []
        for path in canonical_files(root):
            name = path.relative_to(root).as_posix()
            if definitions.is_definition(name):
                continue
            files.append((name, path.read_text()))
            if name in _ROWS_OF_MIGRATIONS:
                migration, insert = _ROWS_OF_MIGRATIONS[name]
                files += [
                    (migration, statement)
                    for statement in migration_files.statements(self.directory / migration)
                    if insert in statement
                ]
        return files

    def _restore_grants(self) -> bool:
        """With nothing pending: put back a grant verify reports missing; True if one changed."""
        present = catalog.exists(self.conn, "guard.apply_grants()", "procedure")
        if not present or privileges.missing_for_apply(self.conn):
            return False
        with self.conn.transaction():
            before = self.conn.execute(_GRANTS_FINGERPRINT).fetchone()
            self.conn.execute("SELECT guard.apply_grants()")
            after = self.conn.execute(_GRANTS_FINGERPRINT).fetchone()
        return before != after

    def plan_apply(self, to: str | None = None) -> ApplyPlan:
        """What `apply(to)` would run, in its order, found in one READ ONLY transaction: no
        advisory lock, nothing created, no lock that blocks a writer; works through a pooler."""
        migrations = self.migrations(known=to)
        found = ApplyPlan()
        try:
            with self.conn.transaction():
                self.conn.execute("SET TRANSACTION READ ONLY")
                pending, level, wanted = self._pending(migrations, to)
                found.migrations = [
                    PlannedMigration(m.id, bool(m.use_transactions), _statements(m, "apply"))
                    for m in pending
                ]
                records = catalog.exists(self.conn, definitions.TABLE) or any(
                    m.id == DEFINITIONS_RECORDED_FROM for m in pending
                )
                if wanted is not None and records:
                    step = definitions.plan(
                        self.conn, wanted[0], source=wanted[1], migrations_ran=bool(pending)
                    )
                    if pending or step.changed:
                        found.definitions = step
                        found.definitions_with_last_migration = bool(
                            pending and pending[-1].use_transactions
                        )
                if self._installable(migrations, pending, level, wanted):
                    found.install = self.install_files()
                    found.definitions_with_last_migration = True
                if not found.empty:
                    found.refusals = privileges.missing_for_apply(self.conn)
                    if self._pooled:
                        found.refusals.insert(0, str(pooler_refusal("`guard db apply`")))
                found.migrator_running = self._lock_holder(others=False)
        except psycopg.errors.InsufficientPrivilege:
            raise  # the CLI names the role the command needs and the login used
        except psycopg.Error as error:
            raise GuardError(
                f"the dry run could not read the database: {first_line(error)}"
            ) from None
        return found

    def definitions_at(
        self, level: str | None, order: list[str]
    ) -> tuple[list[definitions.Definition], str] | None:
        """The definitions that belong at a level (a migration id) and whose they are."""
        if level is None:
            return None
        if order and level == order[-1]:
            if not self.checkout_definitions:
                return None
            return definitions.checkout_definitions(self.sql_directory), definitions.CHECKOUT
        release = release_levels(self.directory).get(level)
        if release is None:
            return None
        bundle = definitions.read_bundle(release.version, self.directory)
        if bundle is None:
            return None
        return bundle, f"release {release.version}"

    def pending_definitions(self) -> list[str]:
        """The definition files an apply would run or drop (read-only)."""
        order = [m.id for m in self.migrations()]
        wanted = self.definitions_at(order[-1] if order else None, order)
        return [] if wanted is None else definitions.pending(self.conn, wanted[0])

    def rollback(
        self, to: str | None = None, *, all_: bool = False, expected: list[str] | None = None
    ) -> list[str]:
        """Roll back the newest migration, or down to (not including) `to`, or all of them,
        putting a release's definitions back at its last migration. `expected`: the ids a
        preview showed; if the plan is no longer that, nothing is done."""
        done: list[str] = []
        self.definitions_outcome = None
        with self._locked():
            plan = self.rollback_plan(to, all_=all_)
            if expected is not None and [m.id for m in plan] != expected:
                raise GuardError(
                    "the applied migrations changed since the preview; nothing was rolled back,"
                    " run the command again"
                )
            if plan:  # dropping the owner role's objects needs its privileges
                privileges.act_as_owner_role(self.conn, self.progress)
            order = [m.id for m in self.migrations()]
            # what is defined now: read before a rollback drops guard.definitions
            self._known = definitions.recorded(self.conn)
            try:
                with self._watching():
                    for migration in plan:
                        position = order.index(migration.id)
                        below = order[position - 1] if position > 0 else None
                        wanted = self.definitions_at(below, order)
                        then = None
                        if wanted is not None and self._known is not None:
                            then = self._definitions_step(
                                wanted, migrations_ran=True, restoring=True
                            )
                        together = then if migration.use_transactions else None
                        self._run_one(migration, "rollback", together)
                        if then is not None and together is None:
                            self._definitions_alone(then, f"restoring the definitions at {below}")
                        done.append(migration.id)
                        if then is not None and wanted is not None:
                            self._known = _as_recorded(wanted[0])
            finally:
                self._known = None
            if done:
                self._resend_pg_cron_schedule()
        return done

    def rollback_plan(self, to: str | None = None, *, all_: bool = False) -> list[Any]:
        """The migrations a rollback would undo, newest first."""
        migrations = self.migrations(known=to)
        applied = self._applied_at()
        plan = []
        for migration in [m for m in reversed(migrations) if m.id in applied]:
            if migration.id == to:
                break
            plan.append(migration)
            if to is None and not all_:
                break
        return plan

    def preview_rollback(self, plan: list[Any]) -> RollbackPreview:
        """Run the rollbacks of `plan` in one transaction that is always rolled back, and report
        the tables (with their row counts) and columns that disappear. Non-transactional
        rollbacks are only named (none drops a table or a column:
        tests/db/test_online_migrations.py)."""
        preview = RollbackPreview(not_previewed=[m.id for m in plan if not m.use_transactions])
        runnable = [m for m in plan if m.use_transactions]
        order = [m.id for m in self.migrations()]

        def attempt(lock_timeout_ms: int) -> tuple[set[Any], set[Any]]:
            self._known = definitions.recorded(self.conn)
            with self._attempt(lock_timeout_ms, force_rollback=True):
                before = set(self.conn.execute(_COLUMNS).fetchall())
                for migration in runnable:
                    settle = self._watch_definitions()
                    for statement in _statements(migration, "rollback"):
                        self._execute(statement)
                    settle()
                    # a release's definitions where it reaches one (older rollbacks expect them)
                    position = order.index(migration.id)
                    wanted = self.definitions_at(order[position - 1], order) if position else None
                    if wanted is not None and self._known is not None:
                        self._definitions_step(wanted, migrations_ran=True, restoring=True)()
                        self._known = _as_recorded(wanted[0])
                after = set(self.conn.execute(_COLUMNS).fetchall())
            return before, after

        try:
            with self._watching():
                before, after = self._retrying(attempt, "rollback preview")
        except psycopg.Error as error:
            preview.error = first_line(error)
            return preview
        finally:
            self._known = None
        kept_oids = {oid for oid, _, _, _ in after}
        gone = {(schema, name) for oid, schema, name, _ in before if oid not in kept_oids}
        for schema, name in sorted(gone):
            count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            preview.tables.append((f"{schema}.{name}", int(scalar(self.conn, count) or 0)))
        # a kept table renamed back keeps its columns: compared by table oid, not by name
        kept_columns = {(oid, column) for oid, _, _, column in after}
        for oid, schema, table, column in sorted(r for r in before - after if r[3] is not None):
            if oid in kept_oids and (oid, column) not in kept_columns:
                preview.columns.append(f"{schema}.{table}.{column}")
        return preview

    def _definitions_step(
        self,
        wanted: tuple[list[definitions.Definition], str],
        *,
        migrations_ran: bool,
        restoring: bool = False,
        batched: bool = False,
    ) -> Callable[[], None]:
        """Apply `wanted` in the current transaction, once the level records definitions (a
        rollback with `_known`, since it may have dropped the record)."""
        texts, source = wanted

        def step() -> None:
            known = self._known if restoring else None
            if known is None and not catalog.exists(self.conn, definitions.TABLE):
                return
            snapshot, made_from = definitions.stored_snapshot()
            self.definitions_outcome = definitions.apply(
                self.conn,
                texts,
                source=source,
                known=known,
                migrations_ran=migrations_ran,
                snapshot=snapshot,
                snapshot_digest=made_from,
                arm=self._arm,
                restoring=restoring,
                batched=batched,
            )

        return step

    def _definitions_alone(self, step: Callable[[], None], what: str) -> None:
        """The definitions step in a transaction of its own, with lock retries."""

        def attempt(lock_timeout_ms: int) -> None:
            with self._attempt(lock_timeout_ms):
                step()

        with self._failing_as("the definitions were not applied"):
            self._retrying(attempt, what)

    def _run_one(
        self, migration: Any, direction: str, then: Callable[[], None] | None = None
    ) -> None:
        failed = "migration {} failed" if direction == "apply" else "rollback of {} failed"
        self._said.clear()
        try:
            with (
                self._failing_as(
                    f"{failed.format(migration.id)} and was not applied",
                    "the definitions applied with it: ",
                ),
                self._watching(),
            ):
                if migration.use_transactions:
                    self._run_transactional(migration, direction, then)
                else:
                    settle = self._watch_definitions()
                    self._run_statement_by_statement(migration, direction)
                    with self.conn.transaction():
                        if direction == "apply":
                            self._mark([migration])
                        else:
                            self._unmark(migration)
                        settle()
        finally:
            for line in self._said:
                self.progress(f"{migration.id}: {line}")
            self._said.clear()

    @contextmanager
    def _failing_as(self, what: str, definitions_say: str = "") -> Iterator[None]:
        """A failure of the block as a GuardError that starts with `what`, with what to do."""
        try:
            yield
        except definitions.DefinitionError as error:
            raise GuardError(f"{what}: {definitions_say}{error}") from None
        except psycopg.errors.QueryCanceled as error:
            raise GuardError(
                f"{what}: {first_line(error)} (--statement-timeout"
                f" {self.lock_policy.statement_timeout_ms} ms: a statement that holds a lock on a"
                " table the application uses is meant to be instant; review it before raising"
                " the timeout)"
            ) from None
        except psycopg.Error as error:
            hint = None
            if isinstance(error, psycopg.errors.InsufficientPrivilege):
                hint = privileges.hint_for(error, self.conn)
            raise GuardError(
                f"{what}: {first_line(error)}{f' ({hint})' if hint else ''}"
                f"{_dependents_hint(error)}"
            ) from None

    def _hear(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        """Keep RAISE NOTICE and WARNING (00000, class 01), not the server's own remarks."""
        state = diagnostic.sqlstate or ""
        if state == "00000" or state.startswith("01"):
            severity = (diagnostic.severity_nonlocalized or "NOTICE").lower()
            self._said.append(f"{severity}: {diagnostic.message_primary}")

    def _run_transactional(
        self, migration: Any, direction: str, then: Callable[[], None] | None = None
    ) -> None:
        """The whole migration and its bookkeeping in one transaction, retried whole."""
        statements = _statements(migration, direction)

        def attempt(lock_timeout_ms: int) -> None:
            self._said.clear()
            with self._attempt(lock_timeout_ms):
                settle = self._watch_definitions()
                if direction == "rollback":
                    self._unmark(migration)
                    self._settle_bridges()  # before the statements remove what a bridge uses
                for statement in statements:
                    self._execute(statement)
                self._arm()  # the migration's own timeouts, if it set any, end with it
                if direction == "apply":
                    self._mark([migration])
                    self._settle_bridges()
                settle()  # before the definitions step below, which runs what it marked
                if self.before_commit is not None:
                    self.before_commit(self.conn, migration)
                if then is not None:  # observed by before_commit above: the migration's own locks
                    then()

        verb = "applying" if direction == "apply" else "rolling back"
        self._retrying(attempt, f"{verb} {migration.id}")

    def _watch_definitions(self) -> Callable[[], None]:
        """Fingerprint the objects of the definitions on record; the callable returned, run after
        the migration's statements, marks the records of the objects they changed STALE, so that
        the next definitions step runs those files again (a rollback that puts back 0065's
        functions would otherwise leave records that say the checkout's text is applied)."""
        records = definitions.recorded(self.conn)
        if records is None:
            records = self._known or []
        if not records:
            return lambda: None
        self._arm()
        before = definitions.fingerprints(self.conn, records)

        def settle() -> None:
            self._arm()
            changed = definitions.touched(self.conn, records, before)
            if not changed:
                return
            definitions.forget(self.conn, changed)
            if self._known is not None:
                self._known = [
                    replace(r, sha256=definitions.STALE) if r.path in changed else r
                    for r in self._known
                ]

        return settle

    def _settle_bridges(self) -> None:
        """Create or drop the bridges the state this transaction commits needs."""
        self._said.extend(bridges.settle(self.conn, set(self._applied_at())))

    def _run_statement_by_statement(self, migration: Any, direction: str) -> None:
        """A `-- transactional: false` migration: each statement commits and is retried on its
        own (such migrations are re-runnable, see 0003_booking_indexes.sql)."""
        verb = "applying" if direction == "apply" else "rolling back"
        started = time.monotonic()
        try:
            for number, statement in enumerate(_statements(migration, direction), start=1):
                concurrent = bool(_CONCURRENTLY.search(statement))

                def attempt(
                    lock_timeout_ms: int, statement: str = statement, concurrent: bool = concurrent
                ) -> None:
                    if concurrent:
                        # It blocks no one while it waits, and a restart throws the build away.
                        left = self.lock_policy.deadline_s - (time.monotonic() - started)
                        set_session_timeouts(self.conn, max(1, int(left * 1000)), 0)
                    else:
                        set_session_timeouts(
                            self.conn, lock_timeout_ms, self.lock_policy.statement_timeout_ms
                        )
                    self.conn.execute(statement)

                self._retrying(
                    attempt,
                    f"{verb} {migration.id} (statement {number}, earlier ones are"
                    " committed; the migration is re-runnable)",
                )
        finally:
            if not self.conn.closed:
                self.conn.execute("RESET lock_timeout")
                self.conn.execute("RESET statement_timeout")

    @contextmanager
    def _attempt(self, lock_timeout_ms: int, *, force_rollback: bool = False) -> Iterator[None]:
        """One attempt's transaction, its statements armed from one lock-wait budget, cut by the
        hold guard (AttemptOverTime) once an application session waited lock_timeout_ms."""
        hold = self._watch
        self._cancels_before = hold.cancels if hold is not None else 0
        guarded = hold.hold(lock_timeout_ms) if hold is not None else nullcontext()
        try:
            with guarded, self.conn.transaction(force_rollback=force_rollback):
                self._budget = LockBudget(
                    self.conn,
                    lock_timeout_ms,
                    floor_ms=self.lock_policy.spent_budget_wait_ms,
                    statement_timeout_ms=self.lock_policy.statement_timeout_ms,
                )
                try:
                    self._budget.arm()
                    yield
                finally:
                    self._budget = None
        except (psycopg.errors.QueryCanceled, definitions.DefinitionError) as error:
            canceled = isinstance(error, psycopg.errors.QueryCanceled) or isinstance(
                error.__cause__, psycopg.errors.QueryCanceled
            )
            # the hold guard's cancel if it sent one since this attempt began
            if canceled and hold is not None and hold.cancels > self._cancels_before:
                raise AttemptOverTime(
                    f"an application session waited {lock_timeout_ms} ms for this attempt"
                ) from None
            raise

    def _retrying(self, attempt: Callable[[int], T], what: str) -> T:
        return run_with_lock_retries(
            attempt, what=what, policy=self.lock_policy, watch=self._watch, progress=self.progress
        )

    def _arm(self) -> None:
        """Before a statement of the running attempt: what is left of its lock-wait budget."""
        if self._budget is None:
            return
        if self._watch is not None and self._watch.cancels > self._cancels_before:
            raise AttemptOverTime("an application session waited a whole lock timeout")
        self._budget.arm()

    def _execute(self, statement: str | bytes) -> None:
        self._arm()
        self.conn.execute(statement)

    @contextmanager
    def _watching(self) -> Iterator[None]:
        """An attempt watch for the duration of one command (opened once, reused)."""
        if self._watch is not None:
            yield
            return
        try:
            with AttemptWatch(self.database_url, self.conn.info.backend_pid) as self._watch:
                yield
        finally:
            self._watch = None

    def _pending(
        self, migrations: Any, to: str | None
    ) -> tuple[list[Any], str | None, tuple[list[definitions.Definition], str] | None]:
        """What apply(to) runs: the pending migrations, the level and its definitions."""
        order = [m.id for m in migrations]
        applied = {order.index(i) for i in self._applied_at() if i in order}
        pending = [m for n, m in enumerate(migrations) if n not in applied]
        newest = max(applied, default=-1)
        for migration in pending:
            position = order.index(migration.id)
            if position < newest:
                before = f"--to {order[position - 1]}" if position > 0 else "--all"
                raise OutOfOrderError(
                    f"refusing to apply {migration.id} out of order: {order[newest]}, a later"
                    f" migration, is already applied (a plain `yoyo rollback` can leave such a"
                    f" gap). Later migrations were written expecting it first. To proceed: `guard"
                    f" db rollback {before}` (undoes the later ones newest first), then `guard db"
                    f" apply` applies everything in order"
                )
        if to is not None:
            pending = [m for m in pending if order.index(m.id) <= order.index(to)]
        level = to if to is not None else (order[-1] if order else None)
        return pending, level, self.definitions_at(level, order)

    def _mark(self, migrations: Any) -> None:
        """Record `migrations` applied, with their checksums, three statements pipelined."""
        yoyo = self._yoyo
        log = yoyo.get_log_data(migrations[0], "mark")  # one host name lookup, not one each
        rows = {
            yoyo.format_sql(yoyo.mark_migration_sql): [
                {"migration_hash": m.hash, "migration_id": m.id, "when": log["created_at_utc"]}
                for m in migrations
            ],
            yoyo.format_sql(yoyo.log_migration_sql): [
                {**log, "id": str(uuid.uuid1()), "migration_id": m.id, "migration_hash": m.hash}
                for m in migrations
            ],
            _RECORD_CHECKSUM: [{"id": m.id, "sha": checksum(m.path)} for m in migrations],
        }
        with self.conn.cursor() as cur:
            for statement, params in rows.items():
                styled = [change_param_style(yoyo.driver.paramstyle, statement, p) for p in params]
                cur.executemany(styled[0][0], [p for _, p in styled])

    def _unmark(self, migration: Any) -> None:
        if catalog.exists(self.conn, "guard.migration_checksums"):
            self._yoyo.execute(
                "DELETE FROM guard.migration_checksums WHERE migration_id = :id",
                {"id": migration.id},
            )
        self._yoyo.unmark_one(migration, log=True)

    @property
    def _yoyo(self) -> Any:
        """yoyo's backend, created on first write (verify and status leave the database be)."""
        if self._backend is None:
            try:
                self._backend = _Backend(self.conn)
                self._backend.init_database()
            except psycopg.Error as error:
                raise GuardError(
                    f"cannot prepare migration bookkeeping: {first_line(error)}"
                ) from None
        return self._backend

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the migration advisory lock."""
        if self._pooled:
            raise pooler_refusal("applying or rolling back migrations")
        cur = self.conn.cursor()
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (LOCK_NAME,))
            row = cur.fetchone()
            if row and row[0]:
                break
            if time.monotonic() >= deadline:
                holder = self._lock_holder() or "it released the lock just now; try again"
                raise GuardError(f"another migrator is running: {holder}")
            time.sleep(0.2)
        try:
            # yoyo's own lock row is left behind by a killed `yoyo` process; while we hold the
            # advisory lock no Booking Guard migrator is running, so such a row is stale.
            cur.execute(f"DELETE FROM {self._yoyo.lock_table_quoted}")
            yield
        finally:
            if not self.conn.closed:
                cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (LOCK_NAME,))

    def _resend_pg_cron_schedule(self) -> None:
        """Schedule the jobs once more, in a transaction of its own, after a change committed.
        pg_cron (every release up to 1.6) can miss a change to cron.job committed together
        with a large schema change: the commit's invalidation messages overflow its scheduler's
        queue, and on the full cache reset that follows pg_cron keeps its old job list
        (citusdata/pg_cron#406). A new install's jobs then never ran until cron.job changed
        again. A small commit made after the scheduler's next loop reaches it."""
        if self.conn.execute(_SCHEDULED_BY_PG_CRON).fetchone() != (True,):
            return
        time.sleep(PG_CRON_CATCH_UP_SECONDS)
        self.conn.execute("SELECT guard.schedule_jobs()")

    def _lock_holder(self, *, others: bool = True) -> str | None:
        """Who holds the migration lock now (None: nobody)."""
        row = self.conn.execute(
            "SELECT a.pid, a.application_name, a.backend_start"
            " FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND (l.classid::bigint << 32 | l.objid::bigint) = hashtextextended(%s, 0)"
            " AND (NOT %s OR a.pid <> pg_backend_pid()) LIMIT 1",
            (LOCK_NAME, others),
        ).fetchone()
        if row is None:
            return None
        connected = f", connected {row[2]:%c}" if others else ""
        return f"server pid {row[0]} ({row[1] or 'no application name'}{connected})"

    def _applied_at(self) -> dict[str, datetime]:
        """Applied migration -> when."""
        query = f'SELECT migration_id, applied_at_utc FROM "{MIGRATION_TABLE}"'
        return dict(catalog.rows_once(self.conn, MIGRATION_TABLE, query.encode()))


def _dependents_hint(error: psycopg.Error) -> str:
    """A table change refused because a view uses the column: how a migration does it."""
    detail = error.diag.message_detail or ""
    if error.sqlstate not in ("0A000", "2BP01") or " depends on " not in detail:
        return ""
    return (
        f" ({detail.splitlines()[0]}: drop a Booking Guard view first in the migration, `DROP"
        " VIEW IF EXISTS ...`; the definitions step after it creates it again from sql/)"
    )


def _as_recorded(applied: list[definitions.Definition]) -> list[definitions.Recorded]:
    """What guard.definitions would say once `applied` is in place."""
    return [
        definitions.Recorded(d.path, d.kind, d.identity, d.sha256, n) for n, d in enumerate(applied)
    ]


def _statements(migration: Any, direction: str) -> list[str]:
    """The SQL statements of a migration or of its rollback file."""
    path = str(migration.path)
    if not path.endswith(".sql"):
        raise GuardError(f"migration {migration.id}: only SQL migrations are supported")
    if direction == "rollback":
        path = path.removesuffix(".sql") + ".rollback.sql"
    return migration_files.statements(path)
