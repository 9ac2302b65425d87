"""Applying and rolling back the yoyo migrations, safely.

yoyo reads and orders the migrations; this module runs them. Differences from plain `yoyo apply`:
- One migration, its yoyo bookkeeping and its content checksum commit in one transaction (yoyo
  runs a migration and marks it on two connections, so a crash in between leaves it applied but
  unmarked).
- A session-level advisory lock instead of yoyo's lock row: the server drops it when the
  migrator's connection ends, so `kill -9` never leaves a lock behind. client_connection_check_
  interval makes the server notice a dead migrator even in the middle of a long statement.
- A content checksum (sha256 of the migration and its rollback) per applied migration, so an
  edited migration is reported by `status` and `verify`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri

from guard.db.connection import connect
from guard.errors import GuardError, first_line
from guard.resources import migrations_dir

MIGRATION_TABLE = "_yoyo_migration"
LOCK_NAME = "booking-guard:migrations"


@dataclass(frozen=True)
class MigrationState:
    """One migration as the database sees it."""

    id: str
    applied: bool
    edited: bool  # applied, and the file changed since
    checksum_recorded: bool
    in_directory: bool = True

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
        return "applied"


def checksum(migration_path: str | Path) -> str:
    """sha256 over a migration file and its rollback file."""
    path = Path(migration_path)
    digest = hashlib.sha256(path.read_bytes())
    rollback = path.with_name(path.name.removesuffix(".sql") + ".rollback.sql")
    if path.suffix == ".sql" and rollback.exists():
        digest.update(b"\0rollback\0")
        digest.update(rollback.read_bytes())
    return digest.hexdigest()


class _Backend(PostgresqlPsycopgBackend):  # type: ignore[misc]
    """yoyo's psycopg 3 backend, on a connection we opened (and whose errors we already vetted)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._supplied_connection = connection
        super().__init__(parse_uri("postgresql+psycopg://"), MIGRATION_TABLE)

    def connect(self, dburi: Any) -> psycopg.Connection[Any]:
        return self._supplied_connection


class Migrator:
    """Runs migrations against one database; use as a context manager."""

    def __init__(
        self,
        database_url: str | None,
        directory: Path | None = None,
        *,
        lock_timeout_s: float = 30.0,
    ) -> None:
        self.database_url = database_url
        self.directory = directory or migrations_dir()
        self.lock_timeout_s = lock_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._backend: Any = None

    def __enter__(self) -> Migrator:
        self._conn = connect(self.database_url, autocommit=True, application_name="guard db")
        try:
            self._preflight(self._conn)
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

    # -- reading -------------------------------------------------------------------------------

    def migrations(self) -> Any:
        if not self.directory.is_dir():
            raise GuardError(f"migrations directory {self.directory} does not exist")
        return read_migrations(str(self.directory))

    def states(self) -> list[MigrationState]:
        applied_ids = self._applied_ids()
        recorded = self._recorded_checksums()
        states = []
        known = set()
        for migration in self.migrations():
            known.add(migration.id)
            applied = migration.id in applied_ids
            recorded_sum = recorded.get(migration.id)
            states.append(
                MigrationState(
                    id=migration.id,
                    applied=applied,
                    edited=applied
                    and recorded_sum is not None
                    and recorded_sum != checksum(migration.path),
                    checksum_recorded=recorded_sum is not None,
                )
            )
        for orphan in sorted(set(applied_ids) - known):
            states.append(MigrationState(orphan, True, False, orphan in recorded, False))
        return states

    # -- changing ------------------------------------------------------------------------------

    def apply(self, to: str | None = None) -> list[str]:
        """Apply pending migrations in order, up to and including `to`. Returns the ids applied."""
        migrations = self.migrations()
        if to is not None:
            self._require_known(migrations, to)
        done: list[str] = []
        with self._locked():
            for migration in self._yoyo.to_apply(migrations):
                self._apply_one(migration)
                done.append(migration.id)
                if migration.id == to:
                    break
        return done

    def rollback(self, to: str | None = None, *, all_: bool = False) -> list[str]:
        """Roll back the newest migration, or down to (not including) `to`, or all of them."""
        migrations = self.migrations()
        if to is not None:
            self._require_known(migrations, to)
        done: list[str] = []
        with self._locked():
            for migration in self._yoyo.to_rollback(migrations):
                if migration.id == to:
                    break
                self._rollback_one(migration)
                done.append(migration.id)
                if to is None and not all_:
                    break
        return done

    # -- internals -----------------------------------------------------------------------------

    def _apply_one(self, migration: Any) -> None:
        backend = self._yoyo
        migration.load()
        try:
            if migration.use_transactions:
                with backend.transaction():
                    migration.process_steps(backend, "apply")
                    self._mark(migration)
            else:
                # Runs statement by statement in autocommit; such migrations are written to be
                # re-runnable after an interruption (see 0003_booking_indexes.sql).
                migration.process_steps(backend, "apply")
                with backend.transaction():
                    self._mark(migration)
        except psycopg.Error as error:
            raise GuardError(
                f"migration {migration.id} failed and was not applied: {first_line(error)}"
            ) from None

    def _rollback_one(self, migration: Any) -> None:
        backend = self._yoyo
        migration.load()
        try:
            if migration.use_transactions:
                with backend.transaction():
                    self._unmark(migration)
                    migration.process_steps(backend, "rollback")
            else:
                migration.process_steps(backend, "rollback")
                with backend.transaction():
                    self._unmark(migration)
        except psycopg.Error as error:
            raise GuardError(
                f"rollback of {migration.id} failed and was not applied: {first_line(error)}"
            ) from None

    def _mark(self, migration: Any) -> None:
        self._yoyo.mark_one(migration, log=True)
        self._yoyo.execute(
            "INSERT INTO guard.migration_checksums (migration_id, sha256) VALUES (:id, :sha)"
            " ON CONFLICT (migration_id) DO UPDATE SET sha256 = EXCLUDED.sha256,"
            " applied_at = now(), applied_by = current_user",
            {"id": migration.id, "sha": checksum(migration.path)},
        )

    def _unmark(self, migration: Any) -> None:
        if self._checksum_table_exists():
            self._yoyo.execute(
                "DELETE FROM guard.migration_checksums WHERE migration_id = :id",
                {"id": migration.id},
            )
        self._yoyo.unmark_one(migration, log=True)

    @property
    def _yoyo(self) -> Any:
        """yoyo's backend, created on first write (reading state needs none, so verify and
        status leave the database untouched)."""
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
        """Hold the migration advisory lock; the server releases it if this process dies."""
        cur = self.conn.cursor()
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (LOCK_NAME,))
            row = cur.fetchone()
            if row and row[0]:
                break
            if time.monotonic() >= deadline:
                raise GuardError(f"another migrator is running: {self._lock_holder()}")
            time.sleep(0.2)
        try:
            # yoyo's own lock row is left behind by a killed `yoyo` process; while we hold the
            # advisory lock no Booking Guard migrator is running, so such a row is stale.
            cur.execute(f"DELETE FROM {self._yoyo.lock_table_quoted}")
            yield
        finally:
            if not self.conn.closed:
                cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (LOCK_NAME,))

    def _lock_holder(self) -> str:
        row = self.conn.execute(
            "SELECT a.pid, a.application_name, a.backend_start"
            " FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND (l.classid::bigint << 32 | l.objid::bigint) = hashtextextended(%s, 0)"
            " AND a.pid <> pg_backend_pid() LIMIT 1",
            (LOCK_NAME,),
        ).fetchone()
        if row is None:
            return "it released the lock just now; try again"
        return f"server pid {row[0]} ({row[1] or 'no application name'}, connected {row[2]:%c})"

    def _preflight(self, conn: psycopg.Connection[Any]) -> None:
        # A migrator killed mid-statement: the server cancels its work within a second instead
        # of holding the lock until the statement ends.
        conn.execute("SET client_connection_check_interval = '1s'")
        row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'plpgsql'").fetchone()
        if not row or row[0] == 0:
            raise GuardError(
                "missing extension plpgsql: Booking Guard's functions and triggers are written in"
                " it; run CREATE EXTENSION plpgsql as a superuser"
            )

    def _applied_ids(self) -> list[str]:
        if not self._yoyo_table_exists():
            return []
        rows = self.conn.execute(f'SELECT migration_id FROM "{MIGRATION_TABLE}"').fetchall()
        return [migration_id for (migration_id,) in rows]

    def _recorded_checksums(self) -> dict[str, str]:
        if not self._checksum_table_exists():
            return {}
        rows = self.conn.execute(
            "SELECT migration_id, sha256 FROM guard.migration_checksums"
        ).fetchall()
        return dict(rows)

    def _yoyo_table_exists(self) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MIGRATION_TABLE,)).fetchone()
        return bool(row and row[0])

    def _checksum_table_exists(self) -> bool:
        row = self.conn.execute(
            "SELECT to_regclass('guard.migration_checksums') IS NOT NULL"
        ).fetchone()
        return bool(row and row[0])

    @staticmethod
    def _require_known(migrations: Any, migration_id: str) -> None:
        if migration_id not in {m.id for m in migrations}:
            raise GuardError(f"unknown migration {migration_id!r}")
