"""The booking journal (guard.booking_attempts) through the booking path: real PostgreSQL, real
Redis behind the breaker, and a connection really terminated by the server mid-booking."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from guard.booking import (
    BookingStatus,
    CalendarBooking,
    book_appointment,
    recover_attempts,
)
from guard.breaker import BreakerConfig, BreakerEvent, BreakerRegistry, EventKind
from guard.masking import mask_phone_numbers
from guard.ops.dispatch.message import safe_details
from guard.retry import RetryPolicy
from guard.schema.migrate import Migrator
from tests.support.queries import fetch_all, fetch_one
from tests.support.seeds import seed_calls_to_book

CONFIG = BreakerConfig(
    failure_threshold=50, success_threshold=2, cooldown_seconds=30, call_timeout_seconds=5
)
NO_RETRY = RetryPolicy(max_attempts=1)
SERVICE = 7


@pytest.fixture
def booking_db(db_url: str) -> str:
    seed_calls_to_book(db_url, SERVICE, 3)
    return db_url


class Calendar:
    """A calendar that remembers every booking by idempotency key (as an idempotent calendar
    API does) and can run a hook while it books."""

    def __init__(self, during: Any = None, fail: bool = False, delay: float = 0.0) -> None:
        self.by_key: dict[str, CalendarBooking] = {}
        self.calls: list[str] = []
        self.during = during
        self.fail = fail
        self.delay = delay

    def book(self, idempotency_key: str) -> CalendarBooking:
        self.calls.append(idempotency_key)
        if self.during is not None:
            self.during()
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("calendar unreachable")
        booking = self.by_key.setdefault(
            idempotency_key, CalendarBooking(uid=f"uid-{len(self.by_key) + 1}")
        )
        return booking

    def lookup(self, idempotency_key: str) -> CalendarBooking | None:
        return self.by_key.get(idempotency_key)


def _one(url: str, query: str, *params: Any) -> Any:
    row = fetch_one(url, query, params)
    assert row is not None
    return row[0] if len(row) == 1 else row


def _age_attempts(url: str, seconds: int = 600) -> None:
    """Make every open attempt older than the timeout (as if its process died long ago)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.booking_attempts SET created_at = created_at - make_interval(secs => %s)"
            " WHERE state IN ('calling', 'unknown')",
            (seconds,),
        )


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _book(url: str, breakers: BreakerRegistry, call_id: int, book: Any, **options: Any) -> Any:
    """book_appointment for SERVICE on a connection of its own."""
    with psycopg.connect(url) as conn:
        return book_appointment(
            conn, call_id=call_id, service_id=SERVICE, book=book, breakers=breakers, **options
        )


def _book_as_the_connection_dies(
    url: str, breakers: BreakerRegistry, call_id: int, *, calendar_fails: bool = False
) -> Calendar:
    """Book a call while the server ends the booking connection in the middle of asking the
    calendar (as if the process died there). The calendar books (the caller sees the lost
    connection) or, `calendar_fails`, fails once (the caller sees the calendar's error)."""
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid
        calendar = Calendar(during=lambda: _terminate(url, pid), fail=calendar_fails)
        error: type[Exception] = ConnectionError if calendar_fails else psycopg.OperationalError
        with pytest.raises(error, match="calendar unreachable" if calendar_fails else None):
            book_appointment(
                conn,
                call_id=call_id,
                service_id=SERVICE,
                book=calendar.book,
                breakers=breakers,
                retry_policy=NO_RETRY if calendar_fails else None,
            )
    return calendar


def test_a_second_booking_while_one_is_calling_is_refused(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    slow = Calendar(delay=1.0)
    first: list[BookingStatus] = []

    def booker() -> None:
        with psycopg.connect(booking_db) as conn:
            first.append(
                book_appointment(
                    conn, call_id=1, service_id=SERVICE, book=slow.book, breakers=breakers
                ).status
            )

    thread = threading.Thread(target=booker)
    thread.start()
    deadline = time.monotonic() + 5
    while not slow.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    other = Calendar()
    with psycopg.connect(booking_db) as conn:
        refused = book_appointment(
            conn, call_id=1, service_id=SERVICE, book=other.book, breakers=breakers, wait_seconds=0
        )
    thread.join(10)
    assert refused.status is BookingStatus.IN_PROGRESS and not refused.ok
    assert refused.idempotency_key == slow.calls[0], "the outcome names the attempt in flight"
    assert other.calls == [], "the calendar was not called for the refused booking"
    assert first == [BookingStatus.BOOKED]


def test_a_calendar_callable_without_the_key_still_books(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    outcome = _book(booking_db, breakers, 1, lambda: CalendarBooking(uid="legacy"))
    assert (outcome.status, outcome.booking_uid) == (BookingStatus.BOOKED, "legacy")
    assert _one(booking_db, "SELECT state FROM guard.booking_attempts") == "booked"


def test_the_original_calendar_error_survives_a_dead_connection(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    """The calendar fails and, meanwhile, the server ends the booking connection: the
    application gets the calendar's error, not the connection error of our cleanup."""
    calendar = _book_as_the_connection_dies(booking_db, breakers, 1, calendar_fails=True)
    state, key = _one(booking_db, "SELECT state, idempotency_key FROM guard.booking_attempts")
    assert (state, key) == ("calling", calendar.calls[0]), "the journal still knows the attempt"


def test_a_booking_lost_with_the_connection_is_recovered_from_the_journal(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    """The calendar books, then the connection dies before the appointment is recorded."""
    calendar = _book_as_the_connection_dies(booking_db, breakers, 2)
    assert _one(booking_db, "SELECT count(*) FROM appointments") == 0
    retried = _book(booking_db, breakers, 2, calendar.book, wait_seconds=0)
    assert retried.status is BookingStatus.IN_PROGRESS, "a retry does not book again"
    with psycopg.connect(booking_db) as conn:
        assert recover_attempts(conn, calendar.lookup).examined == 0, "not timed out yet"
        _age_attempts(booking_db)
        report = recover_attempts(conn, calendar.lookup)
    again = _book(booking_db, breakers, 2, calendar.book)
    assert (report.recovered, report.failed, report.unsettled) == (1, 0, 0)
    assert len(calendar.calls) == 1, "the calendar was asked once in all"
    circuit = breakers.service(SERVICE).snapshot()
    assert circuit.failure_count == 0, "the calendar answered: the lost connection is no failure"
    assert _one(
        booking_db,
        "SELECT a.calcom_v2_booking_id, c.appointment_made, b.state, b.appointment_id = a.id"
        " FROM appointments AS a JOIN calls AS c ON c.id = a.call_id"
        " JOIN guard.booking_attempts AS b ON b.call_id = c.id",
    ) == ("uid-1", True, "recovered", True)
    assert (again.status, again.booking_uid) == (BookingStatus.ALREADY_BOOKED, "uid-1")


def test_an_open_circuit_never_leaves_the_attempt_calling(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    """The circuit refuses the calendar call and the database goes away at that very moment (a
    failover): the attempt is journaled as queued in the transaction that began it, or not at
    all. Left calling, it would refuse the call's next booking as in progress."""
    breaker = breakers.service(SERVICE)
    breaker.force_open("calendar maintenance")
    calendar = Calendar()
    try:
        with psycopg.connect(booking_db) as conn:
            pid = conn.info.backend_pid

            def on_refusal(event: BreakerEvent) -> None:
                if event.kind is EventKind.REJECTED:
                    _terminate(booking_db, pid)

            breakers.add_listener(on_refusal)
            try:
                with pytest.raises(psycopg.OperationalError):
                    book_appointment(
                        conn, call_id=1, service_id=SERVICE, book=calendar.book, breakers=breakers
                    )
            finally:
                breakers.backend.listeners.remove(on_refusal)
        assert _one(booking_db, "SELECT count(*) FROM guard.booking_attempts") == 0
        again = _book(booking_db, breakers, 1, calendar.book, wait_seconds=0)
    finally:
        breaker.force_close("maintenance over")
    assert again.status is BookingStatus.QUEUED, again
    assert _one(booking_db, "SELECT state FROM guard.booking_attempts") == "queued"
    assert calendar.calls == []


def test_reconcile_queues_an_unknown_outcome_and_recovery_settles_it(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    # the calendar never books: the process "dies" in the middle of asking it
    calendar = _book_as_the_connection_dies(booking_db, breakers, 3, calendar_fails=True)
    key = calendar.calls[0]
    with psycopg.connect(booking_db, autocommit=True) as conn:
        before: dict[str, int] = dict(conn.execute("SELECT * FROM guard.reconcile()").fetchall())
        _age_attempts(booking_db)
        detected: dict[str, int] = dict(
            conn.execute("SELECT check_id, offending FROM guard.detect()").fetchall()
        )
        actions: dict[str, int] = dict(conn.execute("SELECT * FROM guard.reconcile()").fetchall())
        review = conn.execute(
            "SELECT reason, priority, details ->> 'idempotency_key',"
            " (details ->> 'service_id')::int FROM guard.review_items WHERE call_id = 3"
        ).fetchall()
        alert = conn.execute(
            "SELECT check_id, severity, details ->> 'idempotency_key', status FROM guard.alerts"
            " WHERE check_id = 'booking_outcome_unknown'"
        ).fetchall()
        alert_details = _one(
            booking_db,
            "SELECT details FROM guard.alerts WHERE check_id = 'booking_outcome_unknown'",
        )
        with psycopg.connect(booking_db) as app:
            asked = time.monotonic()
            refused = book_appointment(
                app, call_id=3, service_id=SERVICE, book=calendar.book, breakers=breakers
            )
            answered_in = time.monotonic() - asked
            report = recover_attempts(app, calendar.lookup)
        settled = conn.execute(
            "SELECT reason, status, priority FROM guard.review_items WHERE call_id = 3 ORDER BY id"
        ).fetchall()
        alert_after = conn.execute(
            "SELECT status, resolution FROM guard.alerts WHERE check_id = 'booking_outcome_unknown'"
        ).fetchall()
        attempt = conn.execute(
            "SELECT state, failure_reason FROM guard.booking_attempts"
        ).fetchone()
    assert before["booking_outcome_unknown"] == 0, "inside its timeout an attempt is left alone"
    assert detected["booking_outcome_unknown"] == 1, "detection reports the timed-out attempt"
    assert actions["booking_outcome_unknown"] == 1
    assert review == [("booking_outcome_unknown", 0, key, SERVICE)], "priority 0: before the rest"
    assert alert == [("booking_outcome_unknown", "critical", key, "open")]
    delivered = safe_details(alert_details)
    # masked like every text on-call gets: a generated key starts with eight digits about once in
    # 43 calls, and a run of eight digits may be a phone number; the rest of the key stays
    assert (delivered["idempotency_key"], delivered["call_id"], delivered["service_id"]) == (
        mask_phone_numbers(key),
        3,
        SERVICE,
    ), "on-call gets the key, call and service with the alert (the dispatcher's whitelist)"
    assert refused.status is BookingStatus.OUTCOME_UNKNOWN and len(calendar.calls) == 1
    # only an attempt in flight is waited for (wait_seconds, 30 s by default): nobody is running
    # the unknown one, so the answer comes at once
    assert answered_in < 10, answered_in
    assert (report.recovered, report.failed, report.unsettled) == (0, 1, 0)
    assert attempt == ("failed", "calendar_booking_failure")
    assert settled == [
        ("booking_outcome_unknown", "resolved", 0),
        ("calendar_booking_failure", "open", 2),
    ], "the unknown outcome is settled; the failed booking is reviewed as any failure"
    assert alert_after == [("resolved", "fixed")]


def test_a_lookup_that_fails_leaves_the_attempt_in_review(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    _book_as_the_connection_dies(booking_db, breakers, 1)
    _age_attempts(booking_db)

    def unreachable(key: str) -> CalendarBooking | None:
        raise TimeoutError("calendar lookup timed out")

    with psycopg.connect(booking_db) as conn:
        conn.execute("SELECT * FROM guard.reconcile()")
        conn.commit()
        report = recover_attempts(conn, unreachable)
    assert (report.recovered, report.failed, report.unsettled) == (0, 0, 1)
    assert report.examined == 1, "an attempt left in review was examined too"
    assert _one(
        booking_db,
        "SELECT b.state, r.status FROM guard.booking_attempts AS b"
        " JOIN guard.review_items AS r ON r.call_id = b.call_id",
    ) == ("unknown", "open")


def test_a_booking_recovered_while_its_process_was_slow_is_not_reported_failed(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    """The booking process outlives the timeout; recover_attempts finds the booking in the
    calendar and records it meanwhile. The late process then answers ALREADY_BOOKED, not
    FAILED, and the call keeps one appointment."""

    def recover_meanwhile() -> None:
        with psycopg.connect(booking_db) as other:
            report = recover_attempts(
                other, lambda key: CalendarBooking(uid="uid-1"), older_than_seconds=0
            )
        assert report.recovered == 1

    calendar = Calendar(during=recover_meanwhile)
    outcome = _book(booking_db, breakers, 1, calendar.book)
    assert (outcome.status, outcome.booking_uid) == (BookingStatus.ALREADY_BOOKED, "uid-1")
    assert _one(
        booking_db,
        "SELECT (SELECT count(*) FROM appointments WHERE call_id = 1),"
        " (SELECT state FROM guard.booking_attempts),"
        " (SELECT count(*) FROM guard.review_items)",
    ) == (1, "booked", 0), "(recorded inside its timeout: booked, not recovered)"


@pytest.mark.slow
def test_rolling_the_journal_back_keeps_its_review_items(booking_db: str) -> None:
    """Rolling back 0016_booking_attempts drops the journal but not the work queued for people:
    an open booking_outcome_unknown item becomes reason other, with the key in its details."""
    with psycopg.connect(booking_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.booking_attempts (company_id, call_id, service_id,"
            " idempotency_key, created_at) VALUES (1, 1, %s, 'k-1', now() - interval '1 hour')",
            (SERVICE,),
        )
        conn.execute("SELECT * FROM guard.reconcile()")
    with Migrator(booking_db) as migrator:
        ids = [state.id for state in migrator.states()]
        before_journal = ids[ids.index("0016_booking_attempts") - 1]
        rolled_back = migrator.rollback(to=before_journal)  # (and any later migration)
        assert rolled_back[-1] == "0016_booking_attempts"
    items = fetch_all(
        booking_db,
        "SELECT reason, priority, status, details ->> 'idempotency_key',"
        " details ->> 'problem' FROM guard.review_items",
    )
    journal = fetch_one(booking_db, "SELECT to_regclass('guard.booking_attempts')")
    assert items == [("other", 5, "open", "k-1", "booking_outcome_unknown")]
    assert journal == (None,)
    with Migrator(booking_db) as migrator:
        assert migrator.apply() == list(reversed(rolled_back))
