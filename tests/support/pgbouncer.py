"""A real PgBouncer (Debian's `pgbouncer` package, /usr/sbin/pgbouncer) in front of a test
PostgreSQL, for the pooler tests of tests/pooler (issue 49).

It listens on 127.0.0.1 only (a free port, no Unix socket), forwards every database name to the
same name on the PostgreSQL it fronts (the `*` fallback), and keeps its pools small
(`default_pool_size` and `max_db_connections` 2 by default) so that a few clients already share
server connections. PgBouncer refuses to run as root: as root it runs as the postgres OS user,
like the test clusters (guard.demo.embedded.as_server_user). Authentication is `trust` with an
auth_file listing the logins the test uses (PgBouncer's trust still needs the user name there);
the test clusters trust 127.0.0.1 too, so no password is involved anywhere.

    with PgBouncer(cluster.host, cluster.port, users=["postgres", "guard_test_app"]) as bouncer:
        psycopg.connect(bouncer.url("guard_test_app", "test_1"))
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import psycopg

from guard.demo.embedded import as_server_user, free_port, hand_to_server_user

PGBOUNCER = Path("/usr/sbin/pgbouncer")
PoolMode = Literal["transaction", "session", "statement"]


class PgBouncerError(RuntimeError):
    pass


def _quoted(value: str) -> str:
    """A name in PgBouncer's auth_file: double-quoted, a `"` doubled."""
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """One PgBouncer process; `start()`/`stop()` or use it as a context manager."""

    def __init__(
        self,
        server_host: str,
        server_port: int,
        *,
        users: Iterable[str] = ("postgres",),
        pool_mode: PoolMode = "transaction",
        pool_size: int = 2,
        ignore_startup_parameters: Iterable[str] = (),
        admin_users: Iterable[str] = (),
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if not PGBOUNCER.exists():
            raise PgBouncerError(
                f"{PGBOUNCER} is missing: the pooler tests need Debian's pgbouncer package"
                " (apt-get install pgbouncer; `make system-packages` installs it)"
            )
        self.server_host = server_host
        self.server_port = server_port
        self.users = list(dict.fromkeys([*users, *admin_users]))
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.ignore_startup_parameters = list(ignore_startup_parameters)
        self.admin_users = list(admin_users)
        self.extra = dict(extra or {})
        self.host = "127.0.0.1"
        self.port = 0
        self.base: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- configuration --------------------------------------------------------------------------

    @property
    def log_file(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "pgbouncer.log"

    def log(self) -> str:
        """What PgBouncer logged so far (for a failing test's message)."""
        try:
            return self.log_file.read_text(errors="replace")
        except (AssertionError, FileNotFoundError):
            return ""

    def _config(self, base: Path) -> str:
        settings = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": "",  # no socket in /tmp shared with other tests
            "auth_type": "trust",
            "auth_file": str(base / "userlist.txt"),
            "pool_mode": self.pool_mode,
            "default_pool_size": str(self.pool_size),
            "max_db_connections": str(self.pool_size),
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": "100",
            "logfile": str(base / "pgbouncer.log"),
            "pidfile": str(base / "pgbouncer.pid"),
            "ignore_startup_parameters": ",".join(self.ignore_startup_parameters),
            "admin_users": ",".join(self.admin_users),
            "server_login_retry": "1",
            **self.extra,
        }
        lines = ["[databases]", f"* = host={self.server_host} port={self.server_port}", ""]
        lines += ["[pgbouncer]", *(f"{key} = {value}" for key, value in settings.items())]
        return "\n".join(lines) + "\n"

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout_s: float = 20) -> PgBouncer:
        self.base = Path(tempfile.mkdtemp(prefix="guard-test-pgbouncer-"))
        self.base.chmod(0o755)
        self.port = free_port()
        users = "".join(f'{_quoted(user)} ""\n' for user in self.users)
        (self.base / "userlist.txt").write_text(users)
        (self.base / "pgbouncer.ini").write_text(self._config(self.base))
        for path in (self.base, self.base / "userlist.txt", self.base / "pgbouncer.ini"):
            hand_to_server_user(path)
        self._process = subprocess.Popen(
            as_server_user([str(PGBOUNCER), str(self.base / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self._wait_until_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, timeout_s: float) -> None:
        """Until PgBouncer accepts a connection and hands it to PostgreSQL (a real query)."""
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        user = self.users[0]
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise PgBouncerError(
                    f"pgbouncer exited with {self._process.returncode}: {stderr.strip()}"
                    f"\n{self.log()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1),
            ):
                try:
                    with psycopg.connect(
                        self.url(user, "postgres"), connect_timeout=3, prepare_threshold=None
                    ) as conn:
                        conn.execute("SELECT 1")
                    return
                except psycopg.OperationalError as error:
                    last = error
            time.sleep(0.05)
        raise PgBouncerError(f"pgbouncer did not accept connections: {last}\n{self.log()}")

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM: clients and server connections closed), then clean up."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            if process.stderr is not None:
                process.stderr.close()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- use ------------------------------------------------------------------------------------

    def url(self, user: str, dbname: str, **params: str) -> str:
        """A libpq URL to `dbname` as `user` through this PgBouncer; `params` become the query
        string (`options`, `application_name`, ...)."""
        query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())
        base = (
            f"postgresql://{quote(user, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )
        return f"{base}?{query}" if query else base

    def admin(self, user: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        """The admin console (database `pgbouncer`; `SHOW POOLS`, ...): needs `admin_users`."""
        if not self.admin_users:
            raise PgBouncerError("no admin_users configured for the admin console")
        return psycopg.connect(
            self.url(user or self.admin_users[0], "pgbouncer"),
            autocommit=True,
            prepare_threshold=None,
            cursor_factory=psycopg.ClientCursor,  # the console speaks the simple protocol only
        )
