"""Booking Guard behind a real PgBouncer 1.18 (issue 49): the session-wide test cluster, a fresh
database per test, and a PgBouncer started per test in front of it (tests/support/pgbouncer.py),
with pools of 2 server connections so that 4 clients share them.

The logins are this package's own (cluster-wide roles, created once per session), members of
Booking Guard's group roles; PgBouncer's auth_file lists them. No passwords: the test cluster
trusts 127.0.0.1 and PgBouncer runs with `auth_type = trust`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from guard.booking import CalendarBooking
from tests.security.conftest import bind, create_logins
from tests.support import polling
from tests.support.pgbouncer import PgBouncer, PoolMode
from tests.support.postgres import Cluster
from tests.support.queries import fetch_one, fetch_texts


class InstantCalendar:
    """An instant in-process calendar: every booking it made, by uid."""

    def __init__(self) -> None:
        self.made: set[str] = set()
        self._lock = threading.Lock()

    def book(self, idempotency_key: str) -> CalendarBooking:
        uid = f"uid-{idempotency_key}"
        with self._lock:
            self.made.add(uid)
        return CalendarBooking(uid=uid, details={"slot": "10:00"})


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
        create_logins(admin, LOGINS)
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
    return polling.wait_for(condition, timeout_s, what, interval_s=0.02)


def advisory_locks(db_url: str) -> int:
    """Advisory locks held in the database of `db_url` (by any server connection)."""
    (count,) = fetch_one(
        db_url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return int(count)


def booked_uids(url: str) -> set[str]:
    """The calendar uids the database recorded as booked: an appointment behind a booked
    attempt."""
    return fetch_texts(
        url,
        "SELECT a.calcom_v2_booking_id FROM appointments AS a"
        " JOIN guard.booking_attempts AS t ON t.booking_uid = a.calcom_v2_booking_id"
        " WHERE t.state = 'booked'",
    )


def delivered_alert_ids(out: Path) -> set[int]:
    """The alert ids in the JSON lines a `--channel stdout` dispatcher wrote to `out`."""
    ids = set()
    for line in out.read_text(errors="replace").splitlines():
        try:
            ids.add(int(json.loads(line)["alert_id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def start_watch(
    bouncer: BouncerFactory, pool_mode: str, database: str, out: Path, err: Path
) -> subprocess.Popen[bytes]:
    """`guard watch` to stdout through a fresh pool in `pool_mode`, past its start-up check and
    first pass; polling only every 30 s, so that a prompt alert shows a NOTIFY woke it."""
    pooler = bouncer(pool_mode, pool_size=2 if pool_mode == "transaction" else 4)
    watch = start_guard(
        pooler.url("postgres", database),
        "watch", "--channel", "stdout", "--poll-interval", "30", "--log-level", "info",
        out=out, err=err,
    )  # fmt: skip
    try:
        wait_for(lambda: b"watching channels" in err.read_bytes(), 30, "guard watch to start")
    except BaseException:
        stop_process(watch)
        raise
    time.sleep(1.5)  # past the start-up check and the first pass
    return watch
