"""The guarded booking path: the one function an application calls to book an appointment.

Every statement runs unprepared (`prepare=False`): behind a transaction pooler a prepared statement
is not on the next server connection, and a failed EXECUTE after the calendar booked would lose
the booking's record (docs/booking-path.md)."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from guard import queries, tracing
from guard.breaker import BreakerRegistry, BulkheadFullError, CircuitOpenError
from guard.errors import GuardError, first_line
from guard.masking import mask_phone_numbers
from guard.retry import Retry, RetryPolicy

__all__ = [
    "BookingNotRecordedError",
    "BookingOutcome",
    "BookingStatus",
    "CalendarBooking",
    "CalendarCall",
    "CalendarStatus",
    "RecoveryReport",
    "book_appointment",
    "recover_attempts",
]

_log = logging.getLogger(__name__)

# guard.begin_booking waits at most this long for another attempt of the same call
_MAX_WAIT_SECONDS = 300.0


class CalendarStatus(StrEnum):
    """A booking's state in the calendar, as guard.calendar.reconcile_calendar compares it."""

    BOOKED = "booked"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class CalendarBooking:
    """What the external calendar returned for a booking, or lists for it."""

    uid: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    status: CalendarStatus | str = CalendarStatus.BOOKED
    call_id: int | None = None
    idempotency_key: str | None = None


# The calendar: book(idempotency_key) -> CalendarBooking (a callable without the key still works).
CalendarCall = Callable[[str], CalendarBooking] | Callable[[], CalendarBooking]


class BookingStatus(StrEnum):
    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"  # the call has an active appointment; calendar not called
    FAILED = "failed"  # the calendar failed, or the booking did not validate: rolled back
    QUEUED = "queued"  # the circuit is open: queued for manual processing, calendar not called
    IN_PROGRESS = "in_progress"  # another attempt for the call is calling; calendar not called
    OUTCOME_UNKNOWN = "outcome_unknown"  # an earlier attempt never finished; in review


@dataclass(frozen=True)
class BookingOutcome:
    status: BookingStatus
    call_id: int
    appointment_id: int | None = None
    booking_uid: str | None = None
    reason: str | None = None
    review_item_id: int | None = None
    retry_after: float | None = None
    idempotency_key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (BookingStatus.BOOKED, BookingStatus.ALREADY_BOOKED)


# Why a person reviews a rollback made here (guard.record_booking's own: validation_failure too).
_REVIEW_REASON = "calendar_booking_failure"


@dataclass(frozen=True)
class _Failure:
    """Why a booking is rolled back: the outcome, and a reviewer's context."""

    reason: str
    context: dict[str, Any]
    status: BookingStatus = BookingStatus.FAILED
    retry_after: float | None = None

    @classmethod
    def open_circuit(cls, error: CircuitOpenError) -> _Failure:
        # A full bulkhead is a rejection too (the calendar was not called), but the circuit may
        # well be closed: say which, so that a reviewer does not look for an outage.
        if isinstance(error, BulkheadFullError):
            state, reason = "bulkhead_full", str(error)
        else:
            state, reason = error.state.label, f"circuit {error.key} is {error.state.label}"
        context = {"circuit": error.key, "circuit_state": state, "queued": True}
        return cls(reason, context, BookingStatus.QUEUED, error.retry_after)

    @classmethod
    def calendar(cls, error: BaseException) -> _Failure:
        name = type(error).__name__
        return cls(name, {"error": name, "message": masked_message(error)})

    def fail_args(self, key: str, calendar_calls: int | None = None) -> tuple[Any, ...]:
        context = self.context | {"reason": self.reason}
        if calendar_calls is not None:
            context["calendar_calls"] = calendar_calls
        trace_id = tracing.trace_id()
        if trace_id is not None:  # the alert and review item the rollback raises carry it
            context["trace_id"] = trace_id
        return (key, _REVIEW_REASON, Jsonb(context))


class BookingNotRecordedError(Exception):
    """The calendar booked, but the database refused to record it or it did not validate: raised
    inside the calendar's guarded call, so that the service's circuit counts the booking as a
    failure (docs/breaker.md, "Which failures count")."""


class _NotJournaled(BaseException):
    """Ends an admitted calendar call whose journal entry could not be committed (the database
    went away), before the calendar is asked: a BaseException, so that neither the breaker
    (docs/breaker.md: not the dependency's fault) nor a retry counts it."""


class _Handoff:
    """The calendar's guarded call, held open at both ends.

    The journal commits only once the breaker admitted the call (the commit proves the database
    takes writes), and the breaker counts the call only once the recording's verdict is in: a
    booking the database refused must count as a failure, or the circuit would never open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.booking: CalendarBooking | None = None
        self.not_recorded: str | None = None
        # The breaker admitted the call, which waits for the journal's commit; and its failure.
        self.admitted = False
        self.not_journaled: BaseException | None = None
        # How many times the calendar was asked (retries included): the journal keeps it for
        # guard_booking_retries_total. A call the breaker refused never reaches _attempt.
        self.calendar_calls = 0
        self._changed = threading.Event()
        self._journaled = threading.Event()
        self._recorded = threading.Event()
        self._error: BaseException | None = None
        self._worker: threading.Thread | None = None

    def policy(self, policy: RetryPolicy | None) -> RetryPolicy:
        """The caller's retry policy, retrying nothing once the calendar has answered or the
        journal could not be committed."""
        policy = policy or RetryPolicy()
        retry_on = policy.retry_on
        return dataclasses.replace(
            policy,
            retry_on=lambda error: (
                self.booking is None and self.not_journaled is None and retry_on(error)
            ),
        )

    def _attempt(self, call: Callable[[], CalendarBooking]) -> CalendarBooking:
        if not self._journaled.is_set():
            self.admitted = True
            self._changed.set()
            self._journaled.wait()
        if self.not_journaled is not None:
            raise _NotJournaled from self.not_journaled
        with self._lock:
            self.calendar_calls += 1
        booking = call()
        # The first answer is the one recorded: a late answer of an attempt the breaker timed out
        # carries the same idempotency key, and waits for the same verdict.
        with self._lock:
            if self.booking is None:
                self.booking = booking
        self._changed.set()
        self._recorded.wait()
        if self.not_recorded is not None:
            raise BookingNotRecordedError(self.not_recorded)
        return booking

    def admit(self, calendar: Retry, call: Callable[[], CalendarBooking]) -> BaseException | None:
        """Start the guarded call: None once the breaker admitted it, else what ended it."""

        def run() -> None:
            try:
                calendar.call(self._attempt, call)
            except BaseException as error:  # handed to the caller's thread
                self._error = error
            finally:
                self._changed.set()

        context = contextvars.copy_context()
        self._worker = threading.Thread(
            target=context.run, args=(run,), name="guard-booking-calendar", daemon=True
        )
        self._worker.start()
        self._changed.wait()
        return None if self.admitted else self._ended()

    def _ended(self) -> BaseException:
        """What ended the guarded call without a booking, once it has ended."""
        if self._worker is not None:
            self._worker.join()
        return self._error or GuardError("the calendar call ended without a booking")

    def journaled(self, error: BaseException | None) -> None:
        """Let the admitted call ask the calendar, or end it unasked (the commit failed)."""
        self.not_journaled = error
        self._changed.clear()
        self._journaled.set()
        if error is not None and self._worker is not None:
            self._worker.join()

    def book(self) -> CalendarBooking:
        """The calendar's booking once an attempt has it; else what the guarded call raised."""
        self._changed.wait()
        if self.booking is not None:
            return self.booking
        raise self._ended()

    def settle(self, verdict: BookingOutcome | BaseException) -> None:
        """Give the held call its verdict (the recording's outcome, or what the recording raised)
        and wait until the breaker has counted it: a booking not recorded counts as a failure."""
        if isinstance(verdict, BookingOutcome):
            if not verdict.ok:
                self.not_recorded = verdict.reason or str(verdict.status)
        elif not database_unavailable(verdict):  # gone away: the calendar's answer stands
            self.not_recorded = "the booking could not be recorded"
        self._recorded.set()
        if self._worker is not None:
            self._worker.join()


def _keyed(book: Callable[..., CalendarBooking], key: str) -> Callable[[], CalendarBooking]:
    """The calendar call with the attempt's idempotency key bound (every retry sends it), unless
    the callable takes no key."""
    try:
        inspect.signature(book).bind("idempotency-key")
    except TypeError:
        return book
    except ValueError:  # no signature to inspect (some builtins): assume the documented form
        pass
    return functools.partial(book, key)


def book_appointment(
    conn: psycopg.Connection[Any],
    *,
    call_id: int,
    service_id: int,
    book: CalendarCall,
    breakers: BreakerRegistry,
    retry_policy: RetryPolicy | None = None,
    source: str = "retell_webhook",
    wait_seconds: float = 30.0,
) -> BookingOutcome:
    """Journal the attempt, book through breaker and retry, record, validate, commit."""
    # ids only: never the caller's phone number, the calendar's answer or the idempotency key
    attributes = {"guard.call_id": call_id, "guard.service_id": service_id}
    with own_transactions(conn), tracing.span("guard.booking", attributes) as booking_span:
        outcome = _book_traced(
            conn, call_id, service_id, book, breakers, retry_policy, source, wait_seconds
        )
        booking_span.set("guard.booking.status", str(outcome.status))
        if outcome.status in (BookingStatus.FAILED, BookingStatus.QUEUED):
            booking_span.fail(f"booking {outcome.status}")
        return outcome


def _book_traced(
    conn: psycopg.Connection[Any],
    call_id: int,
    service_id: int,
    book: CalendarCall,
    breakers: BreakerRegistry,
    retry_policy: RetryPolicy | None,
    source: str,
    wait_seconds: float,
) -> BookingOutcome:
    handoff = _Handoff()
    wait = min(max(wait_seconds, 0.0), _MAX_WAIT_SECONDS)
    # The begin's transaction stays open until the breaker admits the calendar call (see _Handoff).
    with contextlib.ExitStack() as journal:
        journal.enter_context(conn.transaction())
        with tracing.span("guard.booking.begin") as begin_span:
            try:
                row = conn.execute(
                    queries.BEGIN_BOOKING,
                    (call_id, service_id, wait, tracing.trace_id()),  # the trace it began in
                    prepare=False,
                ).fetchone()
            except psycopg.errors.NoDataFound:
                raise GuardError(f"call {call_id} does not exist") from None
            # an attempt to carry on with (state calling, its key), or the outcome
            began, _attempt_id, key, appointment_id, booking_uid = one_row(row)
            began = BookingStatus.IN_PROGRESS if began == "in_flight" else began
            begin_span.set("guard.booking.begin_outcome", str(began))
        if began != "started":
            status = BookingStatus(began)
            return BookingOutcome(status, call_id, appointment_id, booking_uid, idempotency_key=key)
        calendar = Retry(handoff.policy(retry_policy), breaker=breakers.service(service_id))
        failed: Exception | None = None
        with tracing.span("guard.booking.calendar") as calendar_span:
            try:
                unasked = handoff.admit(calendar, _keyed(book, key))
                if unasked is None:
                    journal.close()  # committed: the database takes writes; now the calendar
            except BaseException as error:
                handoff.journaled(error)
                raise
            handoff.journaled(None)
            try:
                if unasked is not None:
                    raise unasked
                booking = handoff.book()
            except Exception as error:  # refused, or the calendar failed after any retries
                calendar_span.set("error.type", type(error).__name__)
                calendar_span.fail(type(error).__name__)
                failed = error
            finally:
                calendar_span.set("guard.booking.calendar_calls", handoff.calendar_calls)
        if failed is not None:
            # Unasked, the attempt is still uncommitted: journaled queued with its rollback, or not
            # at all; the caller gets the database's error then, never a stuck attempt.
            original = None if unasked is not None else failed
            failure = (
                _Failure.open_circuit(failed)
                if isinstance(failed, CircuitOpenError)
                else _Failure.calendar(failed)  # the calendar failed, after any retries
            )
            return _fail(conn, call_id, key, failure, None, original, handoff.calendar_calls)
    try:
        outcome = _record(conn, call_id, key, booking, source, handoff.calendar_calls)
    except BaseException as error:
        handoff.settle(error)
        raise
    handoff.settle(outcome)
    return outcome


def _record(
    conn: psycopg.Connection[Any],
    call_id: int,
    key: str,
    booking: CalendarBooking,
    source: str,
    calendar_calls: int,
) -> BookingOutcome:
    """Record the calendar's booking, validate it and close the attempt, or roll it back and
    queue it: guard.record_booking, one statement in a transaction of its own."""
    try:
        with tracing.span("guard.booking.record") as record_span:
            args = _record_args(key, booking, source, calendar_calls)
            row = conn.execute(queries.RECORD_BOOKING, args, prepare=False).fetchone()
            outcome, appointment_id, review_item_id, reason = one_row(row)
            record_span.set("guard.booking.record_outcome", outcome)
            status = BookingStatus.BOOKED if outcome == "recovered" else BookingStatus(outcome)
            if status is BookingStatus.FAILED:  # only a failure has a reason and a review item
                record_span.set("guard.booking.failure_reason", reason)  # a code, never free text
                record_span.fail("booking not recorded")
            return BookingOutcome(
                status, call_id, appointment_id, booking.uid, reason, review_item_id, None, key
            )
    except psycopg.Error as error:
        if conn.broken or conn.closed or database_unavailable(error):
            raise  # the attempt stays calling in the journal: recover_attempts settles it
        # The calendar booked, but the database refused to record it: a person must decide.
        refused = _Failure.calendar(error)
        context = refused.context | {"booking_uid": booking.uid, "calendar_booked": True}
        failure = _Failure(f"recording failed: {refused.reason}", context)
        return _fail(conn, call_id, key, failure, booking.uid, error, calendar_calls)


def _fail(
    conn: psycopg.Connection[Any],
    call_id: int,
    key: str,
    failure: _Failure,
    booking_uid: str | None,
    original: BaseException | None,
    calendar_calls: int,
) -> BookingOutcome:
    """Close the attempt as failed and roll the call back: one statement (in the journal's
    transaction when the calendar was not asked)."""
    try:
        with tracing.span(
            "guard.booking.rollback", {"guard.booking.review_reason": _REVIEW_REASON}
        ):
            (review_item_id,) = one_row(
                conn.execute(
                    queries.FAIL_BOOKING_ATTEMPT,
                    failure.fail_args(key, calendar_calls),
                    prepare=False,
                ).fetchone()
            )
    except psycopg.Error as cleanup_error:
        if original is None:
            raise
        _log.warning(
            "booking attempt for call %s left calling (settled later): %s",
            call_id,
            first_line(cleanup_error),
        )
        raise original from None
    return BookingOutcome(
        failure.status,
        call_id,
        None,
        booking_uid,
        failure.reason,
        review_item_id,
        failure.retry_after,
        key,
    )


@dataclass(frozen=True)
class RecoveryReport:
    """What recover_attempts did: attempts the calendar had booked and that are now recorded,
    attempts it had not booked (closed as failed, call rolled back and reviewed), and attempts
    left in review (the lookup failed, or another process settled them first)."""

    recovered: int = 0
    failed: int = 0
    unsettled: int = 0

    @property
    def examined(self) -> int:
        return self.recovered + self.failed + self.unsettled


def recover_attempts(
    conn: psycopg.Connection[Any],
    lookup: Callable[[str], CalendarBooking | None],
    *,
    older_than_seconds: int | None = None,
    max_attempts: int = 100,
    source: str = "retell_webhook",
) -> RecoveryReport:
    """Settle the booking attempts whose outcome is unknown by asking the calendar."""
    with own_transactions(conn):
        recovered = failed = unsettled = 0
        for _id, key, _company, call_id, service_id, _state in conn.execute(
            queries.UNSETTLED_BOOKING_ATTEMPTS, (max_attempts, older_than_seconds), prepare=False
        ).fetchall():
            try:
                booking = lookup(key)
            except Exception as error:  # the calendar cannot say: a person decides
                _log.warning(
                    "calendar lookup for call %s failed: %s", call_id, masked_message(error)
                )
                unsettled += 1
                continue
            try:  # each one statement, in autocommit
                if booking is None:
                    context = {"found_by": "recover_attempts", "calendar_booked": False}
                    failure = _Failure("the calendar has no booking for the attempt", context)
                    args = failure.fail_args(key)
                    conn.execute(queries.FAIL_BOOKING_ATTEMPT, args, prepare=False)
                    failed += 1
                else:
                    record_calendar_booking(conn, call_id, service_id, booking, source, key)
                    recovered += 1
            except psycopg.errors.ObjectNotInPrerequisiteState:
                unsettled += 1  # settled by someone else meanwhile (its booking process, a person)
        return RecoveryReport(recovered, failed, unsettled)


def _record_args(
    key: str, booking: CalendarBooking, source: str, calendar_calls: int
) -> tuple[Any, ...]:
    """The parameters of queries.RECORD_BOOKING (bench/prepared.py replays them)."""
    details = Jsonb(dict(booking.details))
    return (key, booking.uid, booking.starts_at, booking.ends_at, details, source, calendar_calls)


def record_calendar_booking(
    conn: psycopg.Connection[Any],
    call_id: int,
    service_id: int,
    booking: CalendarBooking,
    source: str,
    key: str | None = None,
) -> int:
    """Record the calendar's booking of a call in the caller's transaction (recover_attempts, a
    failover's orphan, a booking only the calendar had) and close attempt `key` if given; an
    appointment recorded meanwhile with the booking's uid is the one. Returns its id."""
    times = (booking.starts_at, booking.ends_at)
    values = (call_id, service_id, booking.uid, *times, Jsonb(dict(booking.details)), source, key)
    (appointment_id,) = one_row(
        conn.execute(queries.RECORD_CALENDAR_BOOKING, values, prepare=False).fetchone()
    )
    return int(appointment_id)


# Why the database could not record a booking when it is not the booking's fault: the connection
# was lost (class 08, or no SQLSTATE: the client saw the server go), the server is shutting down
# or starting (57P01 to 57P03), or it takes no writes (25006: a standby, a demoted primary).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "25006"})


def database_unavailable(error: BaseException) -> bool:
    """Whether an error says the database is gone or read-only (a restart, a failover), rather
    than that it refused the statement: such an error is no failure of the calendar's circuit,
    and an attempt it interrupts stays in the journal for recovery."""
    if not isinstance(error, psycopg.Error):
        return False
    sqlstate = error.sqlstate
    if sqlstate is None or sqlstate.startswith("08"):
        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    return sqlstate in _UNAVAILABLE_SQLSTATES


def masked_message(error: BaseException) -> str:
    """The first line of an error's message, phone numbers masked, at most 200 characters."""
    return mask_phone_numbers(first_line(error) if str(error) else "")[:200]


@contextlib.contextmanager
def own_transactions(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Autocommit on an idle connection for the duration, the caller's setting restored after: the
    booking path, recovery and the calendar reconciliation run transactions of their own."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise GuardError(
            "this needs a connection outside a transaction (commit or roll back first):"
            " it runs transactions of its own"
        )
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        # On a connection that died there is nothing to restore, and an error here must never
        # replace the caller's outcome or exception.
        try:
            conn.autocommit = autocommit
        except psycopg.Error as error:
            _log.debug("could not restore autocommit: %s", first_line(error))


def one_row(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """A row the statement always returns; its absence is the database's error, not the caller's."""
    if row is None:
        raise GuardError("the database returned no row where one was expected")
    return row
