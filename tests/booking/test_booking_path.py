"""The guarded booking path end to end: real PostgreSQL, real Redis behind the breaker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import psycopg
import pytest

from guard.booking import (
    BookingStatus,
    CalendarBooking,
    book_appointment,
)
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.errors import GuardError
from guard.retry import RetryPolicy
from tests.support.queries import fetch_all, fetch_one
from tests.support.seeds import seed_calls_to_book

CONFIG = BreakerConfig(
    failure_threshold=3, success_threshold=2, cooldown_seconds=30, call_timeout_seconds=5
)
NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
def booking_db(db_url: str) -> str:
    """One company, a service and three calls; the service id is unique per test (circuits)."""
    seed_calls_to_book(db_url, _next_service(), 3, customer=True)
    return db_url


_services = iter(range(1000, 100000))


def _next_service() -> int:
    return next(_services)


def _service(url: str) -> int:
    row = fetch_one(url, "SELECT id FROM services")
    assert row is not None
    return int(row[0])


class Calendar:
    """A calendar the test controls: counts its calls and the keys it was sent, can fail, can be
    slow."""

    def __init__(self, fail: bool = False, delay: float = 0.0) -> None:
        self.fail = fail
        self.delay = delay
        self.calls = 0
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def book(self, idempotency_key: str) -> CalendarBooking:
        with self._lock:
            self.calls += 1
            self.keys.append(idempotency_key)
            number = self.calls
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("calendar unreachable for +49 30 1234567")
        return CalendarBooking(uid=f"uid-{number}", details={"slot": "10:00"})


def _state(url: str, call_id: int) -> dict[str, Any]:
    row = fetch_one(
        url,
        "SELECT appointment_made, session_outcome, booking_failed, requires_manual_processing,"
        " booking_id, appointment_link_status,"
        " (SELECT count(*) FROM appointments WHERE call_id = c.id),"
        " (SELECT array_agg(reason ORDER BY id) FROM guard.review_items WHERE call_id = c.id)"
        " FROM calls AS c WHERE c.id = %s",
        (call_id,),
    )
    assert row is not None
    keys = ("made", "outcome", "failed", "manual", "booking_id", "link", "appointments", "reviews")
    return dict(zip(keys, row, strict=True))


def _attempts(url: str, call_id: int) -> list[tuple[Any, ...]]:
    return fetch_all(
        url,
        "SELECT state, idempotency_key, booking_uid FROM guard.booking_attempts"
        " WHERE call_id = %s ORDER BY id",
        (call_id,),
    )


def test_a_booking_is_recorded_validated_and_committed(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    calendar = Calendar()
    with psycopg.connect(booking_db) as conn:
        outcome = book_appointment(
            conn, call_id=1, service_id=_service(booking_db), book=calendar.book, breakers=breakers
        )
        assert conn.autocommit is False, "the caller's setting is restored"
    assert outcome.status is BookingStatus.BOOKED and outcome.ok
    assert outcome.booking_uid == "uid-1" and outcome.appointment_id is not None
    state = _state(booking_db, 1)
    assert (state["made"], state["outcome"], state["booking_id"], state["appointments"]) == (
        True,
        "appointment_booked",
        "uid-1",
        1,
    )
    assert fetch_all(booking_db, "SELECT ok FROM guard.validation_metrics") == [(True,)]

    with psycopg.connect(booking_db) as conn:
        again = book_appointment(
            conn, call_id=1, service_id=_service(booking_db), book=calendar.book, breakers=breakers
        )
    assert again.status is BookingStatus.ALREADY_BOOKED and calendar.calls == 1
    assert (again.appointment_id, again.booking_uid) == (outcome.appointment_id, "uid-1"), (
        "a booked call returns its existing booking"
    )
    assert _attempts(booking_db, 1) == [("booked", calendar.keys[0], "uid-1")], (
        "the calendar got the journaled key; the attempt is closed with the booking"
    )


def test_calendar_failure_is_retried_then_rolled_back_and_queued(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    calendar = Calendar(fail=True)
    with psycopg.connect(booking_db) as conn:
        outcome = book_appointment(
            conn,
            call_id=1,
            service_id=_service(booking_db),
            book=calendar.book,
            breakers=breakers,
            retry_policy=RetryPolicy(max_attempts=2, base_delay_seconds=0.01),
        )
    assert calendar.calls == 2, "one retry"
    assert calendar.keys[0] == calendar.keys[1] == outcome.idempotency_key, "a retry sends the key"
    assert _attempts(booking_db, 1) == [("failed", outcome.idempotency_key, None)]
    assert (outcome.status, outcome.reason) == (BookingStatus.FAILED, "ConnectionError")
    state = _state(booking_db, 1)
    assert (state["made"], state["outcome"], state["failed"], state["manual"]) == (
        False,
        "creation_failed",
        True,
        True,
    )
    assert state["link"] == "creation_failed", "the link status says the creation failed"
    assert state["reviews"] == ["calendar_booking_failure"]
    details = fetch_one(
        booking_db, "SELECT details::text FROM guard.review_items WHERE call_id = 1"
    )
    assert details and "1234567" not in details[0], "no phone number reaches the review item"


def test_a_booking_the_database_refuses_to_record_is_rolled_back_and_queued(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    """guard.record_booking raises (no booking uid) instead of answering `failed`: the booking path
    closes the attempt as failed itself, and the review item says the calendar booked."""

    def no_uid(_key: str) -> CalendarBooking:
        return CalendarBooking(uid=cast(str, None))

    with psycopg.connect(booking_db) as conn:
        outcome = book_appointment(
            conn,
            call_id=1,
            service_id=_service(booking_db),
            book=no_uid,
            breakers=breakers,
            retry_policy=NO_RETRY,
        )
    assert (outcome.status, outcome.reason) == (
        BookingStatus.FAILED,
        "recording failed: NullValueNotAllowed",
    )
    assert _attempts(booking_db, 1) == [("failed", outcome.idempotency_key, None)]
    assert _state(booking_db, 1)["reviews"] == ["calendar_booking_failure"]
    details = fetch_one(
        booking_db,
        "SELECT details->>'error', details->>'calendar_booked', details->>'reason',"
        " details ? 'booking_uid', details->>'message' LIKE %s"
        " FROM guard.review_items WHERE call_id = 1",
        ("record_booking needs%",),
    )
    assert details == (
        "NullValueNotAllowed",
        "true",
        "recording failed: NullValueNotAllowed",
        True,
        True,
    )


def test_an_open_circuit_queues_the_booking_without_calling_the_calendar(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    service = _service(booking_db)
    failing = Calendar(fail=True)
    with psycopg.connect(booking_db) as conn:
        for call_id in (1, 2, 3):  # three failures open the circuit
            book_appointment(
                conn,
                call_id=call_id,
                service_id=service,
                book=failing.book,
                breakers=breakers,
                retry_policy=NO_RETRY,
            )
        conn.execute("DELETE FROM guard.review_items WHERE call_id = 3")
        conn.commit()
        healthy = Calendar()
        outcome = book_appointment(
            conn,
            call_id=3,
            service_id=service,
            book=healthy.book,
            breakers=breakers,
            retry_policy=NO_RETRY,
        )
    assert healthy.calls == 0, "an open circuit does not call the calendar"
    assert outcome.status is BookingStatus.QUEUED
    assert outcome.retry_after is not None and outcome.retry_after > 0
    assert outcome.review_item_id is not None
    assert _state(booking_db, 3)["manual"] is True


def test_a_booking_that_does_not_validate_is_rolled_back(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    with psycopg.connect(booking_db, autocommit=True) as conn:
        # A broken database: the flags are no longer derived, so validation must catch it.
        conn.execute("ALTER TABLE appointments DISABLE TRIGGER guard_appointments_sync_insert")
    with psycopg.connect(booking_db) as conn:
        outcome = book_appointment(
            conn,
            call_id=1,
            service_id=_service(booking_db),
            book=Calendar().book,
            breakers=breakers,
        )
    assert (outcome.status, outcome.reason) == (BookingStatus.FAILED, "call_flags_disagree")
    assert outcome.booking_uid == "uid-1", "the reviewer learns which calendar booking to check"
    state = _state(booking_db, 1)
    assert state["appointments"] == 0, "the recorded appointment was rolled back"
    assert state["reviews"] == ["validation_failure"]
    metrics = fetch_all(booking_db, "SELECT ok, failure_reason FROM guard.validation_metrics")
    assert metrics == [(False, "call_flags_disagree")], "the failed validation is still recorded"


def test_two_bookings_for_one_call_at_once_end_in_one_booking(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    calendar = Calendar(delay=0.3)
    service = _service(booking_db)
    outcomes: list[BookingStatus] = []
    barrier = threading.Barrier(2)

    def booker() -> None:
        with psycopg.connect(booking_db) as conn:
            barrier.wait()
            outcome = book_appointment(
                conn, call_id=2, service_id=service, book=calendar.book, breakers=breakers
            )
            outcomes.append(outcome.status)

    threads = [threading.Thread(target=booker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [BookingStatus.ALREADY_BOOKED, BookingStatus.BOOKED]
    assert calendar.calls == 1, "the calendar was asked once"
    assert _state(booking_db, 2)["appointments"] == 1


def test_rollback_waits_for_a_concurrent_writer_of_the_call(booking_db: str) -> None:
    with psycopg.connect(booking_db) as writer:
        writer.execute("UPDATE calls SET status = 'ended' WHERE id = 1")  # holds the row lock
        done = threading.Event()

        def roll_back() -> None:
            with psycopg.connect(booking_db) as conn:
                conn.execute("SELECT guard.rollback_booking(1, 'other', '{}')")
                conn.commit()
            done.set()

        thread = threading.Thread(target=roll_back)
        thread.start()
        assert not done.wait(0.5), "rollback_booking waits for the writer's row lock"
        writer.commit()
        thread.join(timeout=10)
    assert done.is_set()
    row = fetch_one(
        booking_db,
        "SELECT status, session_outcome, requires_manual_processing FROM calls WHERE id = 1",
    )
    assert row == ("ended", "creation_failed", True), "both writes are there, nothing lost"


def test_from_asyncio_a_booking_runs_in_a_worker_thread_and_the_loop_goes_on(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    """The documented way from asyncio (README): `asyncio.to_thread` with a
    connection of the thread's own. The event loop keeps serving while the calendar is slow, and
    the outcomes are those of the synchronous path."""
    service = _service(booking_db)

    def slow_calendar(key: str) -> CalendarBooking:
        time.sleep(0.5)
        return CalendarBooking(uid=f"uid-{key}")

    def failing_calendar(key: str) -> CalendarBooking:
        raise ConnectionError("down")

    def book(call_id: int, calendar: Callable[[str], CalendarBooking]) -> BookingStatus:
        with psycopg.connect(booking_db) as conn:
            return book_appointment(
                conn,
                call_id=call_id,
                service_id=service,
                book=calendar,
                breakers=breakers,
                retry_policy=NO_RETRY,
            ).status

    async def scenario() -> tuple[list[BookingStatus], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        results = [await asyncio.to_thread(book, 1, slow_calendar)]
        served_meanwhile = ticks
        for call_id in (2, 3):
            results.append(await asyncio.to_thread(book, call_id, failing_calendar))
        ticker.cancel()
        return results, served_meanwhile

    results, served_meanwhile = asyncio.run(scenario())
    assert results == [BookingStatus.BOOKED, BookingStatus.FAILED, BookingStatus.FAILED]
    assert served_meanwhile >= 10, "the loop ran while the calendar took 0.5 s"


def test_a_connection_inside_a_transaction_is_refused(
    booking_db: str, breakers: BreakerRegistry
) -> None:
    with psycopg.connect(booking_db) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(GuardError, match="outside a transaction"):
            book_appointment(conn, call_id=1, service_id=1, book=Calendar().book, breakers=breakers)


def test_a_full_bulkhead_queues_the_booking_and_says_so(booking_db: str, redis_url: str) -> None:
    """A booking rejected because the service's circuit already has its limit of calls in flight
    is queued like one rejected by an open circuit, and the reason names the bulkhead: the
    circuit is closed, a reviewer should not look for an outage."""
    service = _service(booking_db)
    registry = BreakerRegistry(redis_url, default=BreakerConfig(max_concurrent_calls=1))
    entered, release = threading.Event(), threading.Event()
    outcomes: dict[int, Any] = {}

    def hung_calendar(key: str) -> CalendarBooking:
        entered.set()
        release.wait(10)
        return CalendarBooking(uid=f"uid-{key[:8]}")

    def book_first() -> None:
        with psycopg.connect(booking_db) as conn:
            outcomes[1] = book_appointment(
                conn,
                call_id=1,
                service_id=service,
                book=hung_calendar,
                breakers=registry,
                retry_policy=NO_RETRY,
            )

    first = threading.Thread(target=book_first)
    first.start()
    try:
        assert entered.wait(10), "the first booking never reached the calendar"
        healthy = Calendar()
        with psycopg.connect(booking_db) as conn:
            outcomes[2] = book_appointment(
                conn,
                call_id=2,
                service_id=service,
                book=healthy.book,
                breakers=registry,
                retry_policy=NO_RETRY,
            )
    finally:
        release.set()
        first.join(15)
        registry.close()
    assert healthy.calls == 0, "a full bulkhead does not call the calendar"
    assert outcomes[2].status is BookingStatus.QUEUED
    assert outcomes[2].reason is not None and "bulkhead full" in outcomes[2].reason
    assert outcomes[1].status is BookingStatus.BOOKED, "the call in flight was not disturbed"
    queued = fetch_all(
        booking_db, "SELECT details ->> 'circuit_state' FROM guard.review_items WHERE call_id = 2"
    )
    assert queued == [("bulkhead_full",)]
