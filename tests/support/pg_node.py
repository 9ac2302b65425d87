"""One PostgreSQL node a fault test fully controls: its own data directory and port, restarted
(`pg_ctl restart -m fast|immediate`), stopped, cloned into a streaming standby with
pg_basebackup and promoted, as an HA tool would. As root, every server binary runs as the
postgres OS user (see guard.demo.embedded). Never shared with other tests: faults would hit them
too. The booking fault tests and the failover tests of the long-lived clients (tests/ha/) use it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from devtools.throwaway import scratch_directory
from guard.demo.embedded import (
    as_server_user,
    free_port,
    hand_to_server_user,
    pg_bindir,
    pg_cron_available,
)
from guard.schema.migrate import Migrator
from tests.support.postgres import wait_until_answering

# A restart must not lose a committed transaction: synchronous_commit stays on (the server
# process dies, the operating system keeps what was written, so fsync may stay off).
NODE_OPTIONS = (
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=on",
    "max_connections=60",
    "listen_addresses=127.0.0.1",
)


def _run(argv: list[str], timeout: float = 60) -> str:
    done = subprocess.run(
        as_server_user(argv), capture_output=True, text=True, check=False, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass
class PgNode:
    base: Path
    port: int = field(default_factory=free_port)
    extra_options: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sockets(self) -> Path:
        return self.base / "run"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    @classmethod
    def create(cls, *extra_options: str) -> PgNode:
        node = cls(scratch_directory("guard-fault-pg-"), extra_options=extra_options)
        node._prepare_dirs()
        _run(
            [
                str(pg_bindir() / "initdb"),
                "-D",
                str(node.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        return node

    def _prepare_dirs(self) -> None:
        hand_to_server_user(self.base)
        self.sockets.mkdir(exist_ok=True)
        hand_to_server_user(self.sockets)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _options(self) -> str:
        options = [*NODE_OPTIONS, *self.extra_options, f"unix_socket_directories={self.sockets}"]
        return " ".join([f"-p {self.port}", *(f"-c {option}" for option in options)])

    def _pg_ctl(self, *args: str) -> None:
        _run([str(pg_bindir() / "pg_ctl"), *args, "-D", str(self.data)], timeout=120)

    def start(self) -> None:
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", self._options())
        self.wait_ready()

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m fast` (clean) or `-m immediate` (a crash: recovery on start)."""
        self._pg_ctl(
            "restart", "-w", "-t", "60", "-m", mode, "-l", str(self.log), "-o", self._options()
        )
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-w", "-m", mode)

    def promote(self) -> None:
        self._pg_ctl("promote", "-w", "-t", "60")

    def in_recovery(self) -> bool:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    def wait_for_replay_of(self, primary: PgNode, timeout_s: float = 30) -> None:
        """Until this standby has replayed everything `primary` has written so far."""
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self.url(), autocommit=True) as conn:
            while True:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {target}")
                time.sleep(0.05)

    def stop_receiving(self, timeout_s: float = 30) -> None:
        """On a standby: stop streaming from the primary (primary_conninfo emptied, reloaded),
        until the WAL receiver is gone. The standby keeps what it received and replays it; what
        the primary writes from now on never reaches it, as with a network that fell behind."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + timeout_s
            while conn.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone() != (0,):
                if time.monotonic() > deadline:
                    raise TimeoutError("the standby's WAL receiver did not stop")
                time.sleep(0.05)

    def standby(self, slot: str) -> PgNode:
        """A streaming standby of this node (pg_basebackup -R -X stream, a replication slot so it
        never falls behind the WAL it needs), started on its own port with the same options."""
        replica = PgNode(
            scratch_directory("guard-fault-standby-"), extra_options=self.extra_options
        )
        replica._prepare_dirs()
        _run(
            [
                str(pg_bindir() / "pg_basebackup"),
                "-h",
                str(self.sockets),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-D",
                str(replica.data),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",  # (the default spread checkpoint waits minutes)
                "-C",
                "-S",
                slot,
            ],
            timeout=120,
        )
        replica.start()
        return replica

    def wait_ready(self, timeout_s: float = 60) -> None:
        wait_until_answering(self.url(), timeout_s)

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # not running
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def pg_cron_options(database: str) -> tuple[str, ...]:
    """pg_cron preloaded, as in production on every node (jobs do nothing on a replica)."""
    if not pg_cron_available():
        return ()
    return ("shared_preload_libraries=pg_cron", f"cron.database_name={database}")


@contextlib.contextmanager
def migrated_node() -> Iterator[PgNode]:
    """A started PostgreSQL of the caller's own, migrated; destroyed afterwards."""
    node = PgNode.create()
    try:
        node.start()
        with Migrator(node.url()) as migrator:
            migrator.apply()
        yield node
    finally:
        node.destroy()


@contextlib.contextmanager
def migrated_pair(
    database: str, slot: str, *options: str, seed: Callable[[str], None] | None = None
) -> Iterator[tuple[PgNode, PgNode]]:
    """A primary holding `database`, migrated and then given `seed(its url)`, and a streaming
    standby (replication slot `slot`) that has replayed all of it; both destroyed afterwards."""
    primary = PgNode.create(*options)
    standby: PgNode | None = None
    try:
        primary.start()
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        with Migrator(primary.url(database)) as migrator:
            migrator.apply()
        if seed is not None:
            seed(primary.url(database))
        standby = primary.standby(slot)
        standby.wait_for_replay_of(primary)
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()
