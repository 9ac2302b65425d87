"""A throwaway local PostgreSQL cluster for the demo."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from guard.errors import GuardError

DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"
FAST_UNSAFE_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def pg_bindir() -> Path:
    """The PostgreSQL server binaries: GUARD_PG_BINDIR, Debian's PostgreSQL 15, or pg_config."""
    configured = os.environ.get("GUARD_PG_BINDIR")
    if configured:
        return Path(configured)
    if (DEFAULT_BINDIR / "pg_ctl").exists():
        return DEFAULT_BINDIR
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return Path(out.stdout.strip())
    raise GuardError("PostgreSQL 15 server binaries not found (set GUARD_PG_BINDIR)")


def as_server_user(argv: list[str]) -> list[str]:
    """argv, re-executed as the postgres OS user when we are root."""
    if os.geteuid() != 0:
        return argv
    return [
        "setpriv",
        f"--reuid={SERVER_USER}",
        f"--regid={SERVER_USER}",
        "--init-groups",
        "--",
        *argv,
    ]


def hand_to_server_user(path: Path) -> None:
    """Make a directory we created usable by the server process."""
    if os.geteuid() == 0:
        shutil.chown(path, SERVER_USER, SERVER_USER)


def pg_cron_available() -> bool:
    out = subprocess.run(
        [str(pg_bindir() / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and (Path(out.stdout.strip()) / "extension/pg_cron.control").exists()


def reachable_by_server_user(path: Path) -> bool:
    """Whether the server's OS user may enter every directory down to `path`."""
    if os.geteuid() != 0:
        return True
    existing = path
    while not existing.exists():
        existing = existing.parent
    return (
        subprocess.run(as_server_user(["test", "-x", str(existing)]), check=False).returncode == 0
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


@dataclass
class EmbeddedCluster:
    """A cluster under `state_dir`, listening on 127.0.0.1 only, trust authentication."""

    state_dir: Path
    cron_database: str = "guard_demo"
    # fsync and friends off: a demo or test cluster is thrown away. bench/workload.py measures
    # durable commits and turns this off.
    fast_unsafe: bool = True
    # Set by start() when the remembered port was taken by another program and a free one chosen.
    moved_from_port: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "postgres.log"

    @property
    def _info_file(self) -> Path:
        return self.state_dir / "cluster.json"

    @property
    def port(self) -> int:
        try:
            port: int = json.loads(self._info_file.read_text())["port"]
        except (FileNotFoundError, KeyError, ValueError):
            raise GuardError(f"no embedded cluster under {self.state_dir}") from None
        return port

    def url(self, dbname: str) -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists() and self._info_file.exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        status = as_server_user(self._pg_ctl("status"))
        return subprocess.run(status, capture_output=True, check=False).returncode == 0

    def start(self) -> bool:
        """Start the cluster, creating it first if needed. False if it was already running."""
        if self.running():
            return False
        if not self.initialised():
            self._initdb()
        elif port_taken(self.port):
            # A stopped demo keeps its data; another program may have taken its port since.
            self.moved_from_port = self.port
            self._info_file.write_text(json.dumps({"port": free_port()}))
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}",
            *(f"-c {option}" for option in FAST_UNSAFE_OPTIONS if self.fast_unsafe),
        ]
        if pg_cron_available():
            options += [
                "-c shared_preload_libraries=pg_cron",
                f"-c cron.database_name={self.cron_database}",
            ]
        self._run(
            self._pg_ctl(
                "start", "-w", "-t", "60", "-l", str(self.log_file), "-o", " ".join(options)
            ),
            "start the embedded PostgreSQL",
        )
        return True

    def stop(self) -> bool:
        """Stop the cluster (data is kept for the next start). False if it was not running."""
        if not self.running():
            return False
        self._run(self._pg_ctl("stop", "-w", "-m", "fast"), "stop the embedded PostgreSQL")
        return True

    def _pg_ctl(self, *args: str) -> list[str]:
        return [str(pg_bindir() / "pg_ctl"), *args, "-D", str(self.data_dir)]

    def _initdb(self) -> None:
        for directory in (self.state_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            hand_to_server_user(directory)
        if not reachable_by_server_user(self.state_dir):
            raise GuardError(
                f"the {SERVER_USER} OS user cannot reach {self.state_dir}: set GUARD_STATE_DIR"
                " to a directory whose parents it may enter (for example under /tmp)"
            )
        initdb = str(pg_bindir() / "initdb")
        options = ["--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]
        self._run(
            [initdb, "-D", str(self.data_dir), "-U", SERVER_USER, *options],
            "create the embedded PostgreSQL cluster",
        )
        self._info_file.write_text(json.dumps({"port": free_port()}))

    def _run(self, argv: list[str], what: str) -> None:
        result = subprocess.run(as_server_user(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            reason = (result.stderr or result.stdout).strip().splitlines()
            detail = self._cause_in_log() or (
                reason[-1] if reason else f"exit code {result.returncode}"
            )
            raise GuardError(f"could not {what}: {detail} (log: {self.log_file})")

    def _cause_in_log(self) -> str | None:
        """The server's own last FATAL or ERROR line: pg_ctl only says to examine the log."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return None
        causes = [line for line in lines[-50:] if "FATAL:" in line or "ERROR:" in line]
        if not causes:
            return None
        return causes[-1].split("FATAL:" if "FATAL:" in causes[-1] else "ERROR:", 1)[1].strip()
