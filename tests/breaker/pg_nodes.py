"""PostgreSQL servers the breaker's failover tests can restart, crash and promote.

The session cluster of tests/conftest.py is shared by every test, so these tests start their
own: a primary, and a streaming standby made with ``pg_basebackup -R``. Servers run as the
``postgres`` OS user (initdb refuses root), on free loopback ports. ``synchronous_commit`` stays
on: an immediate shutdown must not lose what a commit acknowledged, or a test could not tell a
lost event from a lost commit.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from guard.embedded import as_server_user, free_port, hand_to_server_user, pg_bindir


def _run(argv: list[str], output: Path | None = None) -> None:
    """Run as the server user. Output goes to a file, never to a pipe: a server started by
    pg_ctl inherits its descriptors, and a pipe would then never reach end-of-file."""
    with open(output or "/dev/null", "ab") as sink:
        subprocess.run(as_server_user(argv), check=True, stdout=sink, stderr=sink, timeout=120)


@dataclass
class Node:
    base: Path
    port: int

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str) -> None:
        log = self.base / "postgres.log"
        _run(
            [str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(log), *args],
            self.base / "pg_ctl.out",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c wal_level=replica -c max_wal_senders=4"
            " -c hot_standby=on"
        )
        self._pg_ctl("-w", "-o", options, "start")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def restart(self, mode: str) -> None:
        self._pg_ctl("-w", "-m", mode, "restart")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    def promote(self) -> None:
        self._pg_ctl("-w", "promote")

    def cleanup(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def _base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="guard-test-failover-"))
    hand_to_server_user(base)
    return base


def primary() -> Node:
    node = Node(_base(), free_port())
    _run([str(pg_bindir() / "initdb"), "-D", str(node.data), "-U", "postgres", "--auth=trust"])
    node.start()
    return node


def standby_of(source: Node) -> Node:
    """A streaming standby of ``source`` (``pg_basebackup -R``: it connects back to stream)."""
    node = Node(_base(), free_port())
    _run(
        [
            str(pg_bindir() / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(source.port),
            "-U",
            "postgres",
            "-D",
            str(node.data),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",  # a spread checkpoint made this take ~35 s after migrations
        ]
    )
    node.start()
    return node
