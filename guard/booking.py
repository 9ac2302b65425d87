"""The guarded booking path: the one function an application calls to book an appointment.

    outcome = book_appointment(conn, call_id=call.id, service_id=service.id,
                               book=lambda: calendar.book(slot), breakers=breakers)

1. Bookings for one call are serialised by a session advisory lock (held across the calendar
   call, with no transaction open): two bookings for the same call at once end in one booking.
   A call that already has an active appointment is not booked again.
2. The calendar is called under the service's circuit breaker (appointment_booking:service:{id})
   and the retry policy. An open circuit: the booking is queued for manual processing (the call
   is marked, a review item and an alert are raised) and the outcome says so.
3. One transaction records the appointment and the booking uid on the call, validates it
   (guard.validate_booking) and commits. A failed validation rolls that transaction back; the
   failure is recorded, and guard.rollback_booking marks the call and queues a review item.
The async twin takes a psycopg AsyncConnection and an async callable; the steps are the same.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from guard.breaker import BreakerRegistry, CircuitOpenError
from guard.errors import GuardError
from guard.retry import Retry, RetryPolicy

_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('booking-guard:booking:' || %s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('booking-guard:booking:' || %s, 0))"
_CALL = (
    "SELECT c.company_id, c.customer_id, EXISTS (SELECT FROM public.appointments AS a"
    " WHERE a.call_id = c.id AND a.company_id = c.company_id AND a.deleted_at IS NULL"
    " AND a.status IS DISTINCT FROM 'cancelled') FROM public.calls AS c WHERE c.id = %s"
)
_RECORD = (
    "INSERT INTO public.appointments (company_id, call_id, customer_id, service_id,"
    " calcom_v2_booking_id, source, starts_at, ends_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_MARK_CALL = (
    "UPDATE public.calls SET booking_id = %s, booking_details = %s, booking_confirmed = TRUE,"
    " updated_at = now() WHERE id = %s"
)
_VALIDATE = "SELECT ok, reason, details, latency_ms FROM guard.validate_booking(%s, %s, %s)"
_RECORD_FAILED_VALIDATION = "SELECT guard.record_validation(%s, %s, %s, FALSE, %s, %s)"
_ROLLBACK = "SELECT guard.rollback_booking(%s, %s, %s)"
_PHONE_LIKE = re.compile(r"\+?\d[\d\s()/-]{6,}\d")


@dataclass(frozen=True)
class CalendarBooking:
    """What the external calendar returned for a booking."""

    uid: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class BookingStatus(StrEnum):
    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"  # the call has an active appointment; calendar not called
    FAILED = "failed"  # the calendar failed, or the booking did not validate: rolled back
    QUEUED = "queued"  # the circuit is open: queued for manual processing, calendar not called


@dataclass(frozen=True)
class BookingOutcome:
    status: BookingStatus
    call_id: int
    appointment_id: int | None = None
    booking_uid: str | None = None
    reason: str | None = None
    review_item_id: int | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in (BookingStatus.BOOKED, BookingStatus.ALREADY_BOOKED)


@dataclass(frozen=True)
class _Call:
    call_id: int
    company_id: int
    customer_id: int | None
    booked: bool

    @classmethod
    def read(cls, row: tuple[Any, ...] | None, call_id: int) -> _Call:
        if row is None:
            raise GuardError(f"call {call_id} does not exist")
        return cls(call_id, row[0], row[1], bool(row[2]))

    def record_args(
        self, service_id: int, booking: CalendarBooking, source: str
    ) -> tuple[Any, ...]:
        return (
            self.company_id,
            self.call_id,
            self.customer_id,
            service_id,
            booking.uid,
            source,
            booking.starts_at,
            booking.ends_at,
        )


@dataclass(frozen=True)
class _Failure:
    """Why a booking is rolled back: the review reason, the outcome, and a reviewer's context."""

    status: BookingStatus
    review_reason: str
    reason: str
    context: dict[str, Any]
    retry_after: float | None = None

    @classmethod
    def open_circuit(cls, error: CircuitOpenError) -> _Failure:
        return cls(
            BookingStatus.QUEUED,
            "calendar_booking_failure",
            f"circuit {error.key} is {error.state.label}",
            {"circuit": error.key, "circuit_state": error.state.label, "queued": True},
            error.retry_after,
        )

    @classmethod
    def calendar(cls, error: Exception) -> _Failure:
        # Messages of third-party errors may quote what the caller said: mask phone numbers.
        message = _PHONE_LIKE.sub("***", str(error).splitlines()[0] if str(error) else "")[:200]
        return cls(
            BookingStatus.FAILED,
            "calendar_booking_failure",
            type(error).__name__,
            {"error": type(error).__name__, "message": message},
        )

    @classmethod
    def validation(cls, reason: str, details: Any, booking: CalendarBooking) -> _Failure:
        return cls(
            BookingStatus.FAILED,
            "validation_failure",
            reason,
            {"validation": reason, "found": details, "booking_uid": booking.uid},
        )

    def rollback_args(self, call_id: int) -> tuple[Any, ...]:
        return (call_id, self.review_reason, Jsonb(self.context | {"reason": self.reason}))

    def outcome(self, call_id: int, review_item_id: int, booking_uid: str | None) -> BookingOutcome:
        return BookingOutcome(
            self.status, call_id, None, booking_uid, self.reason, review_item_id, self.retry_after
        )


class _ValidationFailed(Exception):
    """Raised inside the booking transaction so that leaving it rolls the booking back."""

    def __init__(self, reason: str, details: Any, latency_ms: float, appointment_id: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details
        self.latency_ms = latency_ms
        self.appointment_id = appointment_id

    def metric_args(self, call: _Call) -> tuple[Any, ...]:
        return (call.company_id, call.call_id, self.appointment_id, self.reason, self.latency_ms)


def book_appointment(
    conn: psycopg.Connection[Any],
    *,
    call_id: int,
    service_id: int,
    book: Callable[[], CalendarBooking],
    breakers: BreakerRegistry,
    retry_policy: RetryPolicy | None = None,
    source: str = "retell_webhook",
    lock_wait_seconds: float = 30.0,
) -> BookingOutcome:
    """Book through breaker and retry, record, validate, commit; roll back and queue on failure.

    `conn` must not be inside a transaction: this function runs its own (in autocommit mode for
    its duration; the connection's own setting is restored)."""
    _require_idle(conn.info.transaction_status)
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        return _book(
            conn, call_id, service_id, book, breakers, retry_policy, source, lock_wait_seconds
        )
    finally:
        conn.autocommit = autocommit


def _book(
    conn: psycopg.Connection[Any],
    call_id: int,
    service_id: int,
    book: Callable[[], CalendarBooking],
    breakers: BreakerRegistry,
    retry_policy: RetryPolicy | None,
    source: str,
    lock_wait_seconds: float,
) -> BookingOutcome:
    deadline = time.monotonic() + lock_wait_seconds
    while not _first(conn.execute(_LOCK, (call_id,)).fetchone()):
        _check_deadline(deadline, call_id)
        time.sleep(0.05)
    try:
        call = _Call.read(conn.execute(_CALL, (call_id,)).fetchone(), call_id)
        if call.booked:
            return BookingOutcome(BookingStatus.ALREADY_BOOKED, call_id)
        try:
            booking = Retry(retry_policy, breaker=breakers.service(service_id)).call(book)
        except CircuitOpenError as open_circuit:
            return _roll_back(conn, call_id, _Failure.open_circuit(open_circuit), None)
        except Exception as error:  # the calendar failed, after any retries
            return _roll_back(conn, call_id, _Failure.calendar(error), None)
        try:
            with conn.transaction():
                (appointment_id,) = _row(
                    conn.execute(_RECORD, call.record_args(service_id, booking, source))
                )
                conn.execute(_MARK_CALL, (booking.uid, Jsonb(dict(booking.details)), call_id))
                ok, reason, details, latency_ms = _row(
                    conn.execute(_VALIDATE, (call_id, appointment_id, booking.uid))
                )
                if not ok:
                    raise _ValidationFailed(reason, details, latency_ms, appointment_id)
        except _ValidationFailed as failed:
            with conn.transaction():
                conn.execute(_RECORD_FAILED_VALIDATION, failed.metric_args(call))
            failure = _Failure.validation(failed.reason, failed.details, booking)
            return _roll_back(conn, call_id, failure, booking.uid)
        return BookingOutcome(BookingStatus.BOOKED, call_id, appointment_id, booking.uid)
    finally:
        conn.execute(_UNLOCK, (call_id,))


async def book_appointment_async(
    conn: psycopg.AsyncConnection[Any],
    *,
    call_id: int,
    service_id: int,
    book: Callable[[], Awaitable[CalendarBooking]],
    breakers: BreakerRegistry,
    retry_policy: RetryPolicy | None = None,
    source: str = "retell_webhook",
    lock_wait_seconds: float = 30.0,
) -> BookingOutcome:
    """`book_appointment` for asyncio: the same steps, never blocking the event loop."""
    _require_idle(conn.info.transaction_status)
    autocommit = conn.autocommit
    await conn.set_autocommit(True)
    try:
        return await _book_async(
            conn, call_id, service_id, book, breakers, retry_policy, source, lock_wait_seconds
        )
    finally:
        await conn.set_autocommit(autocommit)


async def _book_async(
    conn: psycopg.AsyncConnection[Any],
    call_id: int,
    service_id: int,
    book: Callable[[], Awaitable[CalendarBooking]],
    breakers: BreakerRegistry,
    retry_policy: RetryPolicy | None,
    source: str,
    lock_wait_seconds: float,
) -> BookingOutcome:
    deadline = time.monotonic() + lock_wait_seconds
    while not _first(await (await conn.execute(_LOCK, (call_id,))).fetchone()):
        _check_deadline(deadline, call_id)
        await asyncio.sleep(0.05)
    try:
        call = _Call.read(await (await conn.execute(_CALL, (call_id,))).fetchone(), call_id)
        if call.booked:
            return BookingOutcome(BookingStatus.ALREADY_BOOKED, call_id)
        try:
            booking = await Retry(retry_policy, breaker=breakers.service(service_id)).call_async(
                book
            )
        except CircuitOpenError as open_circuit:
            return await _roll_back_async(conn, call_id, _Failure.open_circuit(open_circuit), None)
        except Exception as error:  # the calendar failed, after any retries
            return await _roll_back_async(conn, call_id, _Failure.calendar(error), None)
        try:
            async with conn.transaction():
                cursor = await conn.execute(_RECORD, call.record_args(service_id, booking, source))
                (appointment_id,) = _row_of(await cursor.fetchone())
                await conn.execute(_MARK_CALL, (booking.uid, Jsonb(dict(booking.details)), call_id))
                cursor = await conn.execute(_VALIDATE, (call_id, appointment_id, booking.uid))
                ok, reason, details, latency_ms = _row_of(await cursor.fetchone())
                if not ok:
                    raise _ValidationFailed(reason, details, latency_ms, appointment_id)
        except _ValidationFailed as failed:
            async with conn.transaction():
                await conn.execute(_RECORD_FAILED_VALIDATION, failed.metric_args(call))
            failure = _Failure.validation(failed.reason, failed.details, booking)
            return await _roll_back_async(conn, call_id, failure, booking.uid)
        return BookingOutcome(BookingStatus.BOOKED, call_id, appointment_id, booking.uid)
    finally:
        await conn.execute(_UNLOCK, (call_id,))


def _roll_back(
    conn: psycopg.Connection[Any], call_id: int, failure: _Failure, booking_uid: str | None
) -> BookingOutcome:
    with conn.transaction():
        (review_item_id,) = _row(conn.execute(_ROLLBACK, failure.rollback_args(call_id)))
    return failure.outcome(call_id, review_item_id, booking_uid)


async def _roll_back_async(
    conn: psycopg.AsyncConnection[Any], call_id: int, failure: _Failure, booking_uid: str | None
) -> BookingOutcome:
    async with conn.transaction():
        cursor = await conn.execute(_ROLLBACK, failure.rollback_args(call_id))
        (review_item_id,) = _row_of(await cursor.fetchone())
    return failure.outcome(call_id, review_item_id, booking_uid)


def _require_idle(status: TransactionStatus) -> None:
    if status != TransactionStatus.IDLE:
        raise GuardError("book_appointment needs a connection outside a transaction")


def _check_deadline(deadline: float, call_id: int) -> None:
    if time.monotonic() > deadline:
        raise GuardError(f"another booking for call {call_id} is still running")


def _row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    return _row_of(cursor.fetchone())


def _row_of(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:
        raise GuardError("the database returned no row where one was expected")
    return row


def _first(row: tuple[Any, ...] | None) -> bool:
    return bool(row and row[0])
