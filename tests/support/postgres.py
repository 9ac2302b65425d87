"""A throwaway PostgreSQL 15 cluster for one test session, and databases cloned from a template.

pytest-postgresql's PostgreSQLExecutor starts the cluster; as root it is handed a pg_ctl wrapper
that runs the real one as the postgres OS user: PostgreSQL refuses to run as root
(guard.demo.embedded).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from pytest_postgresql.executors import PostgreSQLExecutor

from devtools.throwaway import scratch_directory
from guard.demo.embedded import (
    FAST_UNSAFE_OPTIONS,
    as_server_user,
    free_port,
    hand_to_server_user,
    pg_bindir,
    pg_cron_available,
)

CRON_DATABASE = "guard_cron"
TEMPLATE_DATABASE = "guard_template"
LEGACY_TEMPLATE_DATABASE = "guard_legacy_template"

# A directory: when set, the cluster counts the calls of every function (track_functions) and
# each database dropped appends which `guard` functions it ran, and for which test file, to a
# file there (mutation/coverage.py reads them: which tests execute a function).
COVERAGE_ENV = "GUARD_FUNCTION_COVERAGE"

_counter = itertools.count(1)


@dataclass
class Cluster:
    host: str
    port: int
    user: str
    base_dir: Path
    test_file_of: dict[str, str] = field(default_factory=dict)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, template: str = "template0", name: str | None = None) -> str:
        name = name or f"test_{next(_counter)}"
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        if os.environ.get(COVERAGE_ENV):
            self.test_file_of[name] = _running_test_file()
        return name

    def drop_database(self, name: str) -> None:
        if name in self.test_file_of and os.environ.get(COVERAGE_ENV):
            self._record_functions_run(name, self.test_file_of.pop(name))
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _record_functions_run(self, name: str, test_file: str) -> None:
        """Append the `guard` functions database `name` ran to the coverage directory. Its other
        sessions end first: a session hands in its counts when it exits."""
        with self.admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone() != (0,):
                time.sleep(0.01)
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            functions = [
                str(row[0])
                for row in conn.execute(
                    "SELECT DISTINCT funcname FROM pg_stat_user_functions"
                    " WHERE schemaname = 'guard' AND calls > 0"
                )
            ]
        line = json.dumps({"test": test_file, "functions": sorted(functions)})
        directory = Path(os.environ[COVERAGE_ENV])
        with (directory / f"functions-{os.getpid()}.jsonl").open("a") as out:
            out.write(line + "\n")

    @contextmanager
    def template(
        self, name: str, build: Callable[[str], object], source: str = "template0"
    ) -> Iterator[str]:
        """A database `name` made from `source` and built by `build(url)`, for tests to clone
        (`database(template=name)`): a slow build (a legacy load, a validate) done once for a
        module instead of once per test. Dropped afterwards. `build` must close every
        connection it opens: PostgreSQL refuses to clone a database another session is in."""
        self.create_database(source, name)
        try:
            build(self.url(name))
            yield name
        finally:
            self.drop_database(name)

    @contextmanager
    def database(self, template: str = "template0") -> Iterator[str]:
        """A fresh database for one test; yields its URL and drops it afterwards."""
        name = self.create_database(template)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


def write_pg_ctl_wrapper(directory: Path) -> Path:
    """A pg_ctl that runs the real one as the server user (what pytest-postgresql needs)."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "pg_ctl"
    argv = " ".join(as_server_user([str(pg_bindir() / "pg_ctl")]))
    wrapper.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


def _running_test_file() -> str:
    """The test file whose setup or call is running now; for the pgTAP runner, the pgTAP file
    it runs (or the runner's own test that runs none)."""
    node = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ", 1)[0]
    path, _, rest = node.partition("::")
    if path != "tests/pgtap/test_pgtap.py":
        return path
    if "[" in rest:
        return "pgtests/" + rest.split("[", 1)[1].rstrip("]")
    return node


def wait_until_answering(url: str, timeout_s: float = 60) -> None:
    """pg_ctl -w can return while the server still answers 'the database system is starting
    up'; wait for a real query to succeed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    base = scratch_directory("guard-test-pg-")
    hand_to_server_user(base)
    sockets = base / "run"
    sockets.mkdir()
    hand_to_server_user(sockets)
    options = [f"-c {option}" for option in FAST_UNSAFE_OPTIONS]
    options += ["-c max_connections=200", "-c client_connection_check_interval=1000"]
    if os.environ.get(COVERAGE_ENV):
        options.append("-c track_functions=all")
    if pg_cron_available():
        options += [
            "-c shared_preload_libraries=pg_cron",
            f"-c cron.database_name={CRON_DATABASE}",
        ]
    executor = PostgreSQLExecutor(
        executable=str(write_pg_ctl_wrapper(Path(tempfile.mkdtemp(prefix="guard-test-bin-")))),
        host="127.0.0.1",
        port=free_port(),
        datadir=str(base / "data"),
        unixsocketdir=str(sockets),
        logfile=str(base / "postgres.log"),
        startparams="-w",
        dbname="postgres",
        user="postgres",
        postgres_options=" ".join(options),
    )
    executor.start()
    try:
        cluster = Cluster("127.0.0.1", executor.port, "postgres", base)
        wait_until_answering(cluster.url())
        yield cluster
    finally:
        if _answers(f"postgresql://postgres@127.0.0.1:{executor.port}/postgres"):
            executor.stop()
        else:
            _report_a_dead_server(executor, base / "postgres.log")
            executor.kill()
        shutil.rmtree(base, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _report_a_dead_server(executor: PostgreSQLExecutor, log: Path) -> None:
    """A server that died under the tests leaves every later test of its worker refused; its log
    goes with the scratch directory, so its end is reported while it is still there."""
    if not log.exists():
        return
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    died = f"the test cluster on port {executor.port} died; its log ends:\n{tail}"
    warnings.warn(died, stacklevel=1)
