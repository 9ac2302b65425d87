"""Nothing Booking Guard runs prepares a statement on the server (issue 71: turning psycopg's
prepared statements back on passed `make test` and was caught only by the slow PgBouncer tests).

Behind a transaction pooler a statement prepared on one server connection is missing on the next
one, or another client's statement of the same name is there (tests/pooler/ shows both). The
guarantee has two halves, each checked here on a direct connection in well under a second:

- every connection Booking Guard opens goes through guard.connection.open_connection (found in
  the source), and a connection it opens never prepares, however often a query repeats;
- the booking path runs unprepared on the application's own connection, whatever that
  connection's prepare_threshold (here 0: psycopg would prepare every statement at once)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from guard.booking import BookingStatus, CalendarBooking, book_appointment
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.connection import connect, open_connection
from guard.retry import RetryPolicy
from tests.support.queries import execute

GUARD = Path(__file__).resolve().parents[2] / "guard"
FACTORY = (GUARD / "connection.py", "open_connection")
REPEATS = 8  # psycopg prepares on the 5th execution by default (prepare_threshold = 5)


def _prepared(conn: psycopg.Connection[Any]) -> int:
    """The statements psycopg prepared on this connection's server session (named _pg3_N; a
    PREPARE that Booking Guard's SQL makes and checks for itself is not one)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE '\\_pg3\\_%%'",
        prepare=False,
    ).fetchone()
    assert row is not None
    return int(row[0])


def _connects(path: Path) -> list[tuple[int, str]]:
    """(line, enclosing function) of each `<...>.connect(...)` call on psycopg or one of its
    connection classes in the module at `path`."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "connect"
                and ast.unparse(child.func.value).split(".")[-1]
                in {"psycopg", "Connection", "AsyncConnection"}
            ):
                found.append((child.lineno, function))
            visit(child, name)

    visit(ast.parse(path.read_text(), str(path)), "")
    return found


def test_every_connection_is_opened_by_the_one_factory() -> None:
    opened = {
        (path, line, function)
        for path in sorted(GUARD.rglob("*.py"))
        if "connect(" in path.read_text()  # parse only the modules that may open one
        for line, function in _connects(path)
    }
    elsewhere = sorted(
        f"{path.relative_to(GUARD.parent)}:{line} ({function or 'module level'})"
        for path, line, function in opened
        if (path, function) != FACTORY
    )
    assert not elsewhere, (
        f"open a connection with guard.connection.open_connection (never prepares): {elsewhere}"
    )
    assert any((path, function) == FACTORY for path, _, function in opened), (
        "the factory itself was not found: this test looks for the wrong call"
    )


@pytest.mark.parametrize("factory", ["open_connection", "connect"])
def test_a_connection_guard_opens_never_prepares(db_url: str, factory: str) -> None:
    opened = (
        open_connection(db_url, autocommit=True)
        if factory == "open_connection"
        else connect(db_url, autocommit=True)
    )
    with opened as conn:
        assert conn.prepare_threshold is None
        for _ in range(REPEATS):
            conn.execute("SELECT count(*) FROM guard.settings WHERE key <> %s", ("x",))
        assert _prepared(conn) == 0


def test_the_booking_path_prepares_nothing_on_the_applications_connection(db_url: str) -> None:
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        "INSERT INTO customers (id, company_id, name) VALUES (1, 1, 'Ann')",
        "INSERT INTO services (id, company_id, name) VALUES (7, 1, 'Beratung')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id, customer_id, session_outcome)"
            " VALUES (1, 1, 'c1', 1, 'in_progress'), (2, 1, 'c2', 1, 'in_progress')"
        ),
    )
    made: list[str] = []
    lock = threading.Lock()

    def book(idempotency_key: str) -> CalendarBooking:
        with lock:
            made.append(idempotency_key)
        return CalendarBooking(uid=f"uid-{idempotency_key}", details={"slot": "10:00"})

    breakers = BreakerRegistry(in_memory=True, default=BreakerConfig(call_timeout_seconds=10))
    try:
        # the application's connection, eager to prepare: every statement at its first run
        with psycopg.connect(db_url, prepare_threshold=0) as app:
            for call_id in (1, 2):
                outcome = book_appointment(
                    app,
                    call_id=call_id,
                    service_id=7,
                    book=book,
                    breakers=breakers,
                    retry_policy=RetryPolicy(max_attempts=1),
                )
                assert outcome.status is BookingStatus.BOOKED, outcome
            assert _prepared(app) == 0
    finally:
        breakers.close()
    assert len(made) == 2
