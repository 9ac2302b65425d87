"""What the booking path and the calendar's reconciliation (guard.calendar) share."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from guard import queries
from guard.errors import GuardError, first_line
from guard.masking import mask_phone_numbers

_log = logging.getLogger(__name__)


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
    values = (
        call_id,
        service_id,
        booking.uid,
        booking.starts_at,
        booking.ends_at,
        Jsonb(dict(booking.details)),
        source,
        key,
    )
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


def require_idle(status: TransactionStatus) -> None:
    """The booking path, recovery and the calendar reconciliation run transactions of their own."""
    if status != TransactionStatus.IDLE:
        raise GuardError(
            "this needs a connection outside a transaction (commit or roll back first):"
            " it runs transactions of its own"
        )


@contextlib.contextmanager
def own_transactions(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Autocommit on an idle connection for the duration, the caller's setting restored after."""
    require_idle(conn.info.transaction_status)
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
