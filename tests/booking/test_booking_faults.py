"""A booking is never lost: 8 booking processes book through guard.booking.book_appointment while
PostgreSQL is restarted (`pg_ctl restart -m fast`, then `-m immediate`), or while its streaming
standby is promoted after the primary crashed. Then the reconcile job (`guard reconcile`) and
recover_attempts run, and the calendar's records are compared with the database:
  - every booking the calendar confirmed is an appointment of its call, or an open review item;
  - none is without a trace;
  - the calendar was never asked twice for one idempotency key, nor for one call.
Each test runs its own cluster (the faults would hit every other test) and prints its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from guard.booking import recover_attempts
from guard.schema.migrate import Migrator
from tests.booking.fault_worker import PROGRESS_KEY, STOP_KEY, RedisCalendar
from tests.conftest import ROOT
from tests.support.pg_node import PgNode
from tests.support.queries import execute, fetch_one
from tests.support.redis_server import RedisServer

WORKERS = 8
CALLS = 20_000  # more than the workers get through: they stop when told
SERVICE = 1
LOAD_BEFORE_FAULT_SECONDS = 3.0

pytestmark = pytest.mark.slow


@dataclass
class Figures:
    faults: list[str] = field(default_factory=list)
    worker_counts: Counter[str] = field(default_factory=Counter)
    reconcile: dict[str, int] = field(default_factory=dict)
    recovered: int = 0
    recovery_failed: int = 0
    unsettled: int = 0

    def table(self, title: str, checks: dict[str, Any]) -> str:
        rows = [
            ("faults", ", ".join(self.faults)),
            *sorted((f"worker {k}", str(v)) for k, v in self.worker_counts.items()),
            (
                "reconcile booking_outcome_unknown",
                str(self.reconcile.get("booking_outcome_unknown")),
            ),
            ("recover_attempts recovered", str(self.recovered)),
            ("recover_attempts failed (calendar had none)", str(self.recovery_failed)),
            ("recover_attempts left in review", str(self.unsettled)),
            *((name, str(value)) for name, value in checks.items()),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join([f"\n== {title}", *(f"  {n:<{width}}  {v}" for n, v in rows)])


@pytest.fixture
def calendar_redis() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _seed(url: str) -> None:
    with Migrator(url) as migrator:
        migrator.apply()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute("INSERT INTO services (id, company_id, name) VALUES (%s, 1, 'S')", (SERVICE,))
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " SELECT g, 1, 'c' || g, 'in_progress' FROM generate_series(1, %s) AS g",
            (CALLS,),
        )


def _create_database(node: PgNode) -> str:
    with psycopg.connect(node.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bookings")
    return "bookings"


def _progress(redis_url: str) -> dict[int, int]:
    redis = RedisCalendar(redis_url).redis
    return {n: int(redis.get(f"{PROGRESS_KEY}:{n}") or 0) for n in range(WORKERS)}


def _wait_until_all_progress(redis_url: str, beyond: dict[int, int]) -> None:
    """Until every worker has answered a booking since `beyond` (it is connected and busy)."""
    deadline = time.monotonic() + 60
    while any(_progress(redis_url)[n] <= beyond[n] for n in range(WORKERS)):
        assert time.monotonic() < deadline, f"workers stalled: {_progress(redis_url)}"
        time.sleep(0.05)


def _run_load(
    app_url: str, redis_url: str, faults: list[tuple[str, Callable[[], None]]]
) -> Figures:
    """8 worker processes book; each fault is injected while all of them are busy, and the next
    one only after every worker has booked again. Returns when all workers stopped."""
    figures = Figures()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.booking.fault_worker",
                app_url,
                redis_url,
                str(SERVICE),
                str(number),
                str(WORKERS),
                str(CALLS),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(WORKERS)
    ]
    try:
        _wait_until_all_progress(redis_url, dict.fromkeys(range(WORKERS), 0))
        for name, fault in faults:
            time.sleep(LOAD_BEFORE_FAULT_SECONDS)
            fault()
            figures.faults.append(name)
            _wait_until_all_progress(redis_url, _progress(redis_url))
        time.sleep(LOAD_BEFORE_FAULT_SECONDS)
    finally:
        RedisCalendar(redis_url).redis.set(STOP_KEY, "1")
        for worker in workers:
            out, err = worker.communicate(timeout=90)
            assert worker.returncode == 0, f"a booking worker crashed:\n{err[-2000:]}"
            figures.worker_counts.update(json.loads(out.strip().splitlines()[-1]))
    return figures


def _recover(app_url: str, calendar: RedisCalendar, figures: Figures) -> None:
    """What operations run after an incident: the reconcile job, then recover_attempts. The
    timeout is shortened to 1 s instead of waiting the default 120 s."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = '1' WHERE key = 'booking_attempt_timeout_seconds'"
        )
    time.sleep(1.2)
    reconciled = subprocess.run(
        [sys.executable, "-m", "guard.cli", "--database-url", app_url, "reconcile", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert reconciled.returncode == 0, reconciled.stderr
    figures.reconcile = json.loads(reconciled.stdout)["actions"]
    with psycopg.connect(app_url) as conn:
        report = recover_attempts(conn, calendar.lookup, max_attempts=10_000)
    figures.recovered, figures.recovery_failed = report.recovered, report.failed
    figures.unsettled = report.unsettled


def _verify(app_url: str, calendar: RedisCalendar) -> dict[str, Any]:
    """Compare the calendar with the database; returns the figures it checked."""
    confirmed = calendar.bookings()
    requests = calendar.requests()
    with psycopg.connect(app_url) as conn:
        appointments = set(
            conn.execute(
                "SELECT call_id, calcom_v2_booking_id FROM appointments"
                " WHERE deleted_at IS NULL AND status IS DISTINCT FROM 'cancelled'"
            ).fetchall()
        )
        reviewed = conn.execute(
            "SELECT call_id, details ->> 'idempotency_key', details ->> 'booking_uid'"
            " FROM guard.review_items WHERE status IN ('open', 'claimed')"
        ).fetchall()
        states: dict[str, int] = dict(
            conn.execute("SELECT state, count(*) FROM guard.booking_attempts GROUP BY state")
        )
        per_call = conn.execute(
            "SELECT count(*) FROM (SELECT call_id FROM appointments GROUP BY call_id"
            " HAVING count(*) > 1) AS doubled"
        ).fetchone()
    review_keys = {key for _call, key, _uid in reviewed if key}
    review_uids = {uid for _call, _key, uid in reviewed if uid}
    as_appointment = [k for k, b in confirmed.items() if (b["call_id"], b["uid"]) in appointments]
    in_review = [
        k
        for k, b in confirmed.items()
        if (b["call_id"], b["uid"]) not in appointments
        and (k in review_keys or b["uid"] in review_uids)
    ]
    untraced = sorted(set(confirmed) - set(as_appointment) - set(in_review))
    requests_per_key = Counter(r["key"] for r in requests)
    keys_per_call: dict[int, set[str]] = {}
    for request in requests:
        keys_per_call.setdefault(request["call_id"], set()).add(request["key"])
    return {
        "calendar requests": len(requests),
        "bookings the calendar confirmed": len(confirmed),
        "... recorded as appointments": len(as_appointment),
        "... in review": len(in_review),
        "... without a trace": len(untraced),
        "double calendar requests per key": sum(n - 1 for n in requests_per_key.values()),
        "calls the calendar was asked about twice": sum(
            1 for keys in keys_per_call.values() if len(keys) > 1
        ),
        "calls with two appointments": per_call[0] if per_call else None,
        "attempts by state": dict(sorted(states.items())),
    }


def _assert_nothing_lost(checks: dict[str, Any], figures: Figures) -> None:
    assert checks["bookings the calendar confirmed"] > 0, "the load booked nothing"
    assert checks["... without a trace"] == 0
    assert checks["double calendar requests per key"] == 0
    assert checks["calls the calendar was asked about twice"] == 0
    assert checks["calls with two appointments"] == 0
    states = checks["attempts by state"]
    unsettled = {s: n for s, n in states.items() if s in ("calling", "unknown")}
    assert unsettled == {}, "recover_attempts settles every attempt the calendar can answer for"
    errors = sum(n for kind, n in figures.worker_counts.items() if kind.startswith("error:"))
    assert errors >= WORKERS * len(figures.faults), "every fault reaches every busy worker"


def test_restarts_under_load_lose_no_booking(
    calendar_redis: str, capsys: pytest.CaptureFixture[str]
) -> None:
    node = PgNode.create()
    try:
        node.start()
        url = node.url(_create_database(node))
        _seed(url)

        restarts = [
            ("pg_ctl restart -m fast", lambda: node.restart("fast")),
            ("pg_ctl restart -m immediate", lambda: node.restart("immediate")),
        ]
        started = time.monotonic()
        figures = _run_load(url, calendar_redis, restarts)
        calendar = RedisCalendar(calendar_redis)
        _recover(url, calendar, figures)
        checks = _verify(url, calendar)
        checks["seconds"] = round(time.monotonic() - started, 1)
    finally:
        node.destroy()
    with capsys.disabled():
        print(figures.table("restarts under 8 booking workers", checks))
    _assert_nothing_lost(checks, figures)


def test_promoting_the_standby_under_load_loses_no_booking(
    calendar_redis: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Synchronous replication: a commit the application saw is on the standby, so promoting it
    # after the primary crashed loses no attempt (docs: asynchronous standbys can).
    primary = PgNode.create()
    standby: PgNode | None = None
    try:
        primary.start()
        dbname = _create_database(primary)
        _seed(primary.url(dbname))
        standby = primary.standby("booking_guard_fault_test")
        # (after the base backup: the standby, once promoted, must not wait for a standby itself)
        execute(
            primary.url(),
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "SELECT pg_reload_conf()",
        )
        app_url = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{dbname}"
            "?target_session_attrs=read-write"
        )
        promoted = standby

        def failover() -> None:
            primary.stop("immediate")
            promoted.promote()

        started = time.monotonic()
        figures = _run_load(
            app_url,
            calendar_redis,
            [("primary stopped -m immediate, standby promoted (pg_ctl promote)", failover)],
        )
        calendar = RedisCalendar(calendar_redis)
        _recover(app_url, calendar, figures)
        checks = _verify(app_url, calendar)
        checks["seconds"] = round(time.monotonic() - started, 1)
        row = fetch_one(app_url, "SELECT pg_is_in_recovery(), current_setting('port')")
        assert row == (False, str(standby.port)), "the application ended on the promoted standby"
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()
    with capsys.disabled():
        print(figures.table("standby promoted under 8 booking workers", checks))
    _assert_nothing_lost(checks, figures)
