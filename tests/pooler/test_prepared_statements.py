"""Issue 49, row 3: psycopg prepares a query on the server after its 5th execution on a
connection (prepare_threshold=5, the default); behind a transaction pooler the next execution may
run on another server connection, without the statement (InvalidSqlStatementName) or where
another client already prepared one of that name (DuplicatePreparedStatement). The application's
connection is its own, opened with psycopg's defaults: the booking path and guard.check_call must
work on it anyway, because Booking Guard's library code never auto-prepares (prepare=False).

Before the fix: 160 bookings from 4 clients gave 21 errors and 3 bookings made in the calendar
but recorded as failed. Each test prints its counts on one line (`pytest -s`)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import psycopg
import pytest

from guard.booking import BookingStatus, book_appointment
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.retry import RetryPolicy
from tests.pooler.conftest import APP, BouncerFactory, InstantCalendar, booked_uids, dbname
from tests.support.seeds import seed_calls_to_book

CLIENTS = 4
BOOKINGS = 160
SERVICE = 77


@pytest.fixture
def booking_url(db_url: str) -> str:
    """One company, a customer, a service and BOOKINGS calls in progress (ids 1..BOOKINGS)."""
    seed_calls_to_book(db_url, SERVICE, BOOKINGS, customer=True)
    return db_url


def _in_threads(work: Any, clients: int = CLIENTS) -> list[BaseException]:
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as error:  # reported by the test
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return failures


@pytest.mark.slow
def test_bookings_through_a_transaction_pool(booking_url: str, bouncer: BouncerFactory) -> None:
    """160 bookings (book_appointment) from 4 application connections with psycopg's default
    prepare_threshold, through a transaction pool of 2: no error, and every booking the calendar
    made is recorded as booked."""
    pooler = bouncer("transaction")
    url = pooler.url(APP, dbname(booking_url))
    calendar = InstantCalendar()
    breakers = BreakerRegistry(
        in_memory=True, default=BreakerConfig(failure_threshold=1000, call_timeout_seconds=10)
    )
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        with psycopg.connect(url) as conn:  # the application's: psycopg's defaults
            assert conn.prepare_threshold == 5
            for call_id in range(index + 1, BOOKINGS + 1, CLIENTS):
                try:
                    outcome = book_appointment(
                        conn,
                        call_id=call_id,
                        service_id=SERVICE,
                        book=calendar.book,
                        breakers=breakers,
                        retry_policy=RetryPolicy(max_attempts=1),
                    )
                    key = "booked" if outcome.status is BookingStatus.BOOKED else "not booked"
                    if outcome.status is not BookingStatus.BOOKED:
                        key = f"{outcome.status.name.lower()} ({outcome.reason})"
                except psycopg.Error as error:
                    key = f"error {type(error).__name__}"
                with lock:
                    counts[key] += 1

    try:
        failures = _in_threads(client)
    finally:
        breakers.close()
    assert not failures, failures[0]
    recorded = booked_uids(booking_url)
    lost = len(calendar.made - recorded)
    errors = sum(n for key, n in counts.items() if key != "booked")
    print(
        f"row 3: {BOOKINGS} bookings from {CLIENTS} clients through a transaction pool of 2:"
        f" {dict(sorted(counts.items()))}; errors or not booked {errors}; made in the calendar"
        f" but recorded as failed {lost}"
    )
    assert errors == 0
    assert lost == 0
    assert counts["booked"] == BOOKINGS == len(calendar.made)


def test_check_call_through_a_transaction_pool(booking_url: str, bouncer: BouncerFactory) -> None:
    """`SELECT guard.check_call(call_id)` 40 times from each of 4 application connections with
    psycopg's default prepare_threshold, through a transaction pool of 2: this is the
    application's own statement, so it must say `prepare=False` itself; Booking Guard's part is
    that nothing inside needs a session. Counted: errors, which must be none."""
    pooler = bouncer("transaction")
    url = pooler.url(APP, dbname(booking_url))
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for call_id in range(index + 1, BOOKINGS + 1, CLIENTS):
                try:
                    conn.execute("SELECT guard.check_call(%s)", (call_id,), prepare=False)
                    key = "ok"
                except psycopg.Error as error:
                    key = f"error {type(error).__name__}"
                with lock:
                    counts[key] += 1

    failures = _in_threads(client)
    assert not failures, failures[0]
    errors = sum(n for key, n in counts.items() if key != "ok")
    print(f"row 3: check_call through a transaction pool of 2: {dict(counts)}; errors {errors}")
    assert errors == 0 and counts["ok"] == BOOKINGS


def test_auto_prepared_check_call_breaks_behind_a_transaction_pool(
    booking_url: str, bouncer: BouncerFactory
) -> None:
    """The harness reproduces what the issue saw: the same check_call with psycopg's automatic
    prepared statements (the application did not say prepare=False) fails behind a transaction
    pool. Documents why the application must not auto-prepare either (and that this test setup
    can see it)."""
    pooler = bouncer("transaction")
    url = pooler.url(APP, dbname(booking_url))
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for call_id in range(index + 1, BOOKINGS + 1, CLIENTS):
                try:
                    conn.execute("SELECT guard.check_call(%s)", (call_id,))
                except (
                    psycopg.errors.DuplicatePreparedStatement,
                    psycopg.errors.InvalidSqlStatementName,
                ) as error:
                    with lock:
                        errors[type(error).__name__] += 1

    failures = _in_threads(client)
    assert not failures, failures[0]
    print(f"row 3: auto-prepared check_call through a transaction pool of 2: {dict(errors)}")
    assert sum(errors.values()) > 0, "the pooler did not break auto-prepared statements"
