"""Booking Guard behind a real PgBouncer 1.18 (issue 49): the session-wide test cluster, a fresh
database per test, and a PgBouncer started per test in front of it (tests/support/pgbouncer.py),
with pools of 2 server connections so that 4 clients share them.

The logins are this package's own (cluster-wide roles, created once per session), members of
Booking Guard's group roles; PgBouncer's auth_file lists them. No passwords: the test cluster
trusts 127.0.0.1 and PgBouncer runs with `auth_type = trust`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.security.conftest import bind, create_login
from tests.support.pgbouncer import PgBouncer, PoolMode
from tests.support.postgres import Cluster

APP = "guard_pooler_app"
DASHBOARD = "guard_pooler_dashboard"  # reporting, bound to companies 1, 2 and 3
DASHBOARD_ONE = "guard_pooler_dashboard_one"  # reporting, bound to company 1 only
DASHBOARD_DEFAULT = "guard_pooler_dashboard_default"  # bound to 1 and 2, ALTER ROLE ... SET 1
LOGINS = {
    APP: "application",
    DASHBOARD: "reporting",
    DASHBOARD_ONE: "reporting",
    DASHBOARD_DEFAULT: "reporting",
}
COMPANIES = (1, 2, 3)
CALLS_PER_COMPANY = 5

BouncerFactory = Callable[..., PgBouncer]


def dbname(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


@pytest.fixture(scope="session")
def pooler_logins(pg_cluster: Cluster, template_database: str) -> dict[str, str]:
    with psycopg.connect(pg_cluster.url(template_database), autocommit=True) as admin:
        groups: dict[str, str] = dict(
            admin.execute("SELECT kind, role_name FROM guard.role_names").fetchall()
        )
        for login, kind in LOGINS.items():
            create_login(admin, login, groups[kind])
    return dict(LOGINS)


@pytest.fixture
def bouncer(
    pg_cluster: Cluster, db_url: str, pooler_logins: dict[str, str]
) -> Iterator[BouncerFactory]:
    """bouncer(pool_mode=..., ignore_startup_parameters=...) -> a started PgBouncer in front of
    the test cluster, stopped after the test; the database is `db_url`'s."""
    started: list[PgBouncer] = []

    def start(pool_mode: PoolMode = "transaction", **options: Any) -> PgBouncer:
        pooler = PgBouncer(
            pg_cluster.host,
            pg_cluster.port,
            users=[pg_cluster.user, *pooler_logins],
            pool_mode=pool_mode,
            **options,
        )
        started.append(pooler)
        return pooler.start()

    try:
        yield start
    finally:
        for pooler in started:
            pooler.stop()


@pytest.fixture
def tenants_url(db_url: str, pooler_logins: dict[str, str]) -> str:
    """Three companies with five calls each (call ids 100 * company + 1..5), the dashboards bound
    as their names say; the per-login default of DASHBOARD_DEFAULT is set in this database only."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        for company in COMPANIES:
            admin.execute(
                "INSERT INTO companies (id, name) VALUES (%s, %s)", (company, f"C{company}")
            )
            admin.execute(
                "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
                " SELECT 100 * %s + g, %s, 'r' || (100 * %s + g), 'in_progress'"
                " FROM generate_series(1, %s) AS g",
                (company, company, company, CALLS_PER_COMPANY),
            )
        admin.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET booking_guard.company_id = '1'").format(
                sql.Identifier(DASHBOARD_DEFAULT), sql.Identifier(dbname(db_url))
            )
        )
    bind(db_url, DASHBOARD, *COMPANIES)
    bind(db_url, DASHBOARD_ONE, 1)
    bind(db_url, DASHBOARD_DEFAULT, 1, 2)
    return db_url


def guard_cli(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`guard --database-url URL ARGS...` in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_guard(url: str, *args: str, out: Path, err: Path) -> subprocess.Popen[bytes]:
    """`guard --database-url URL ARGS...` running in the background, output into files."""
    with out.open("wb") as stdout, err.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "--database-url", url, *args],
            stdout=stdout,
            stderr=stderr,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def advisory_locks(db_url: str) -> int:
    """Advisory locks held in the database of `db_url` (by any server connection)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None
    return int(row[0])
