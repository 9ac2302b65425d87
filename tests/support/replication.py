"""A primary and a streaming standby on this machine, for failover tests: initdb, a base backup
taken with `pg_basebackup -R -X stream` (the standby's recovery settings written for it), both
run as the postgres OS user on their own ports; `promote` fails over like an HA tool would."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from guard.embedded import (
    FAST_UNSAFE_OPTIONS,
    as_server_user,
    free_port,
    hand_to_server_user,
    pg_bindir,
    pg_cron_available,
)


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    socket_dir: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def pg_ctl(self, *args: str) -> None:
        _run([str(pg_bindir() / "pg_ctl"), *args, "-D", str(self.data_dir)])

    def start(self, cron_database: str) -> None:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}",
            *(f"-c {option}" for option in FAST_UNSAFE_OPTIONS),
        ]
        if pg_cron_available():  # as in production: preloaded on every node
            options += [
                "-c shared_preload_libraries=pg_cron",
                f"-c cron.database_name={cron_database}",
            ]
        log = self.data_dir.parent / f"{self.name}.log"
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", " ".join(options))
        wait_until_ready(self.url())

    def in_recovery(self) -> bool:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])


def _run(argv: list[str]) -> None:
    done = subprocess.run(as_server_user(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout}")


def wait_until_ready(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def primary_and_standby(database: str) -> Iterator[tuple[Node, Node]]:
    """A primary with `database` created, and a standby streaming from it (what is written on
    the primary later, migrations included, reaches the standby by streaming)."""
    base = Path(tempfile.mkdtemp(prefix="guard-test-ha-"))
    hand_to_server_user(base)
    sockets = base / "run"
    sockets.mkdir()
    hand_to_server_user(sockets)
    primary = Node("primary", free_port(), base / "primary", sockets)
    standby = Node("standby", free_port(), base / "standby", sockets)
    started: list[Node] = []
    try:
        _run(
            [
                str(pg_bindir() / "initdb"),
                "-D",
                str(primary.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]
        )
        primary.start(database)
        started.append(primary)
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        _run(
            [
                str(pg_bindir() / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(standby.data_dir),
                "-R",
                "-X",
                "stream",
                # without it the backup waits for a spread checkpoint: 93 s instead of 0.3 s here
                "--checkpoint=fast",
                "--no-sync",
            ]
        )
        standby.start(database)
        started.append(standby)
        yield primary, standby
    finally:
        for node in reversed(started):
            with contextlib.suppress(RuntimeError):  # the test stopped it (the old primary)
                node.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(base, ignore_errors=True)


def wait_for_replay(primary: Node, standby: Node, timeout_s: float = 30) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        while True:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()
            if done and done[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay up to {target}")
            time.sleep(0.05)
