"""Issue 71, row 5: a session setting one client leaves on a pooled server connection.

Behind PgBouncer in `pool_mode = transaction`, one client ran the old pin (`SET
booking_guard.company_id`) and left. Its value stays on the server connection (PgBouncer resets
nothing in transaction mode) until the connection is recycled (an hour by default), and every
later client of that login got it. Guard refused the value (SQLSTATE 22023) to all of them:
40 bookings from 4 clients, 28-31 refused before the calendar, 1-2 failed after it, 3 per run
booked in the calendar and not recorded, and the calendar's circuit opened.

The fix: guard.current_company ignores such a value (this transaction's pin or the login's own
binding and default decide) and sends a WARNING to whoever is on the connection. Here one pool of
one server connection, so every client gets the value left behind; each test first checks that
the value is really there, then that nobody is refused and nobody sees another company."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import psycopg
import pytest

from guard.booking import BookingStatus, book_appointment
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.retry import RetryPolicy
from tests.pooler.conftest import (
    APP,
    DASHBOARD_DEFAULT,
    DASHBOARD_ONE,
    BouncerFactory,
    InstantCalendar,
    booked_uids,
    dbname,
)

CLIENTS = 4
BOOKINGS = 40
SERVICES = {1: 71, 2: 72}  # company -> its service
CALLS_FROM = 1000  # the calls to book: CALLS_FROM + 1 .. CALLS_FROM + BOOKINGS, both companies
Conn = psycopg.Connection[tuple[Any, ...]]


def _company(call_id: int) -> int:
    return 1 + call_id % 2


def _connect(url: str) -> Conn:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


def _leave_a_session_value(url: str, company: int) -> None:
    """Client A: the old pin, then it leaves (the server connection stays in the pool)."""
    with _connect(url) as old_client:
        old_client.execute(f"SET booking_guard.company_id = '{company}'")


def _value_on_the_server_connection(url: str) -> str | None:
    with _connect(url) as probe:
        row = probe.execute("SELECT current_setting('booking_guard.company_id', TRUE)").fetchone()
    return None if row is None else row[0]


def _count_warnings(conn: Conn, counts: Counter[str], lock: threading.Lock) -> None:
    def hear(diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized == "WARNING" and "is ignored" in (
            diagnostic.message_primary or ""
        ):
            with lock:
                counts["warned"] += 1

    conn.add_notice_handler(hear)


@pytest.fixture
def booking_url(tenants_url: str) -> str:
    """tenants_url's companies, a customer and a service each, and BOOKINGS calls in progress
    alternating between companies 1 and 2."""
    with psycopg.connect(tenants_url, autocommit=True) as conn:
        for company, service in SERVICES.items():
            conn.execute(
                "INSERT INTO customers (id, company_id, name) VALUES (%s, %s, 'Ann')",
                (company, company),
            )
            conn.execute(
                "INSERT INTO services (id, company_id, name) VALUES (%s, %s, 'Beratung')",
                (service, company),
            )
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, customer_id, session_outcome)"
            " SELECT g, 1 + g %% 2, 'c' || g, 1 + g %% 2, 'in_progress'"
            " FROM generate_series(%s::integer, %s::integer) AS g",
            (CALLS_FROM + 1, CALLS_FROM + BOOKINGS),
        )
    return tenants_url


def test_bookings_after_a_client_left_a_session_pin(
    booking_url: str, bouncer: BouncerFactory
) -> None:
    """Client A of the application's login runs `SET booking_guard.company_id = '1'` and leaves;
    four clients of the same login then book 40 calls of companies 1 and 2 on that one server
    connection. Counted as the issue did: none refused, none failed, every booking the calendar
    made recorded, and the circuit stays closed (nothing queued)."""
    pooler = bouncer("transaction", pool_size=1)
    url = pooler.url(APP, dbname(booking_url))
    _leave_a_session_value(url, 1)
    assert _value_on_the_server_connection(url) == "1", "the pool did not keep the value"
    calendar = InstantCalendar()
    breakers = BreakerRegistry(in_memory=True, default=BreakerConfig(call_timeout_seconds=10))
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def client(index: int) -> None:
        try:
            with _connect(url) as conn:
                _count_warnings(conn, counts, lock)
                for call_id in range(CALLS_FROM + 1 + index, CALLS_FROM + BOOKINGS + 1, CLIENTS):
                    try:
                        outcome = book_appointment(
                            conn,
                            call_id=call_id,
                            service_id=SERVICES[_company(call_id)],
                            book=calendar.book,
                            breakers=breakers,
                            retry_policy=RetryPolicy(max_attempts=1),
                        )
                        key = str(outcome.status)
                        if outcome.status is not BookingStatus.BOOKED:
                            key = f"{outcome.status} ({outcome.reason})"
                    except psycopg.Error as error:
                        key = f"error {type(error).__name__}"
                    with lock:
                        counts[key] += 1
        except BaseException as error:  # reported by the test, not lost in a thread
            failures.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        breakers.close()
    assert not failures, failures[0]
    recorded = booked_uids(booking_url)
    lost = len(calendar.made - recorded)
    print(
        f"row 5: {BOOKINGS} bookings from {CLIENTS} clients after a session pin was left on the"
        f" one server connection: {dict(sorted(counts.items()))}; made in the calendar but not"
        f" recorded {lost}"
    )
    assert counts["booked"] == BOOKINGS == len(calendar.made), counts
    assert lost == 0
    assert counts["warned"] > 0, "the ignored value warns the clients on the connection"
    assert _value_on_the_server_connection(url) == "1"  # still there, still harmless


@pytest.mark.parametrize(
    ("login", "left"),
    [(DASHBOARD_ONE, 2), (DASHBOARD_DEFAULT, 2), (DASHBOARD_DEFAULT, 3)],
    ids=["bound-to-1-left-2", "default-1-left-2", "default-1-left-unbound-3"],
)
def test_reads_after_a_client_left_a_session_pin(
    tenants_url: str, bouncer: BouncerFactory, login: str, left: int
) -> None:
    """Client A of a dashboard login that may see company 1 only (bound to 1 alone, or bound to
    1 and 2 with the login default 1) leaves `SET booking_guard.company_id` to another company on
    the one server connection; four clients of that login then read. Each query is served, sees
    company 1 and nothing else, and the clients are warned."""
    pooler = bouncer("transaction", pool_size=1)
    url = pooler.url(login, dbname(tenants_url))
    _leave_a_session_value(url, left)
    assert _value_on_the_server_connection(url) == str(left), "the pool did not keep the value"
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    clients = [_connect(url) for _ in range(CLIENTS)]
    try:
        for conn in clients:
            _count_warnings(conn, counts, lock)
        for _ in range(5):
            for conn in clients:
                counts["queries"] += 1
                try:
                    seen = {c for (c,) in conn.execute("SELECT DISTINCT company_id FROM calls")}
                except psycopg.Error as error:
                    counts[f"error {type(error).__name__}"] += 1
                    continue
                counts["saw company 1 only" if seen == {1} else f"saw {sorted(seen)}"] += 1
    finally:
        for conn in clients:
            conn.close()
    print(f"row 5: {login} reads after a session pin to {left} was left: {dict(counts)}")
    assert counts["saw company 1 only"] == counts["queries"] == 5 * CLIENTS, counts
    assert counts["warned"] > 0
