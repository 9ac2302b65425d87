"""The calendar's reconciliation: what the external calendar holds, compared with `appointments`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from guard import queries
from guard.booking import (
    CalendarBooking,
    CalendarStatus,
    masked_message,
    one_row,
    own_transactions,
    record_calendar_booking,
)
from guard.errors import GuardError

_log = logging.getLogger(__name__)

# How far ahead of now the window reaches when no `until` is given: bookings are made for the
# weeks ahead, and those are what a person in the calendar's UI moves or cancels.
DEFAULT_HORIZON = timedelta(days=30)
# More appointments missing from the calendar's answer than this is refused (docs/calendar.md).
DEFAULT_MAX_MISSING = 100


_MAX_ORPHANED = 100_000
# The report's lists of ids, in the order it gives them.
ID_LISTS = (
    "recorded",
    "cancelled",
    "rescheduled",
    "calendar_only",
    "missing",
    "in_flight",
    "failed",
    "review_items",
)

ListBookings = Callable[[datetime, datetime], Iterable[CalendarBooking]]


class CalendarError(GuardError):
    """The calendar client failed, or answered with something that is not a list of bookings:
    nothing was compared and nothing written."""


@dataclass(frozen=True)
class CalendarReport:
    """What reconcile_calendar found and did, by id only."""

    since: datetime
    until: datetime
    listed: int = 0
    in_sync: int = 0
    recorded: tuple[int, ...] = ()
    cancelled: tuple[int, ...] = ()
    rescheduled: tuple[int, ...] = ()
    calendar_only: tuple[str, ...] = ()
    missing: tuple[int, ...] = ()
    in_flight: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    review_items: tuple[int, ...] = ()
    missing_error: str | None = None
    unchanged: int = 0
    orphaned_before: datetime | None = None
    orphaned: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether this run wrote anything (a second run with the same answer does not)."""
        return any(self.written().values())

    @property
    def ok(self) -> bool:
        """Every booking was reconciled and the database's side was compared."""
        return not self.failed and self.missing_error is None

    def counts(self) -> dict[str, int]:
        counts = {"listed": self.listed, "in_sync": self.in_sync}
        counts |= {name: len(getattr(self, name)) for name in ID_LISTS[:-1]}
        counts["failed"] += self.missing_error is not None
        return counts | {"review_items_opened": len(self.review_items)}

    def written(self) -> dict[str, int]:
        """What this run wrote, by kind: appointments recorded, cancelled, rescheduled, and
        review items opened (calendar_only_booking, missing_in_calendar)."""
        written = {name: len(getattr(self, name)) for name in ID_LISTS[:3]}
        return written | {"queued_for_review": len(self.review_items)}

    def summary(self) -> str:
        """One sentence: what this run wrote, counted, and what it left."""
        written = self.written()
        if any(written.values()):
            head = (
                f"Changed: {written['recorded']} recorded, {written['cancelled']} cancelled,"
                f" {written['rescheduled']} rescheduled,"
                f" {written['queued_for_review']} queued for review"
            )
        else:
            head = "Nothing changed"
        parts = [f"{head}; {self.unchanged} unchanged"]
        if self.in_flight:
            parts.append(f"{len(self.in_flight)} in flight (left to their booking path)")
        if self.orphaned:
            parts.append(
                f"{len(self.orphaned)} attempt(s) from before the failover not in the calendar"
                " (left to guard reconcile)"
            )
        failed = self.counts()["failed"]
        if failed:
            parts.append(f"{failed} failed")
        return "; ".join(parts) + "."


# The list each answer of guard.reconcile_calendar_booking adds to: an appointment's id, or for
# in_flight and queued the calendar's uid (in_sync: counted only).
_ANSWER_LISTS = {
    "record": "recorded",
    "cancelled": "cancelled",
    "rescheduled": "rescheduled",
    "in_sync": "in_sync",
    "in_flight": "in_flight",
    "queued": "calendar_only",
}


def _tally(found: dict[str, list[Any]], uid: str, rows: list[tuple[Any, ...]]) -> None:
    """Add the answer of guard.reconcile_calendar_booking for one booking to `found`."""
    for action, appointment_id, *_, item, changed in rows:
        by_uid = action in ("in_flight", "queued")
        found[_ANSWER_LISTS[action]].append(uid if by_uid else appointment_id)
        if action == "queued":  # a review item this run opened, or one open already
            found["review_items" if changed else "open_already"].append(int(item))


def _checked(answer: object) -> list[CalendarBooking]:
    """The calendar client's answer, refused whole (CalendarError) if any of it is not a booking
    the reconciliation can compare: a wrong answer must not turn every appointment into one
    missing from the calendar."""
    if isinstance(answer, str | bytes | dict) or not isinstance(answer, Iterable):
        raise CalendarError(
            f"the calendar client returned {type(answer).__name__}, not a list of CalendarBooking"
        )
    bookings = list(answer)
    for position, booking in enumerate(bookings, start=1):
        problem = _problem(booking)
        if problem:
            raise CalendarError(f"the calendar client's booking {position}: {problem}")
    return bookings


def _problem(booking: object) -> str | None:
    if not isinstance(booking, CalendarBooking):
        return f"a {type(booking).__name__}, not a CalendarBooking"
    uid, key, call_id = booking.uid, booking.idempotency_key, booking.call_id
    wrong = {
        "its uid is empty or not text": not isinstance(uid, str)
        or not uid.strip()
        or "\x00" in uid,
        "its status is neither booked nor cancelled": booking.status not in tuple(CalendarStatus),
        "its call_id is not a call id": call_id is not None
        and (isinstance(call_id, bool) or not isinstance(call_id, int) or not 0 < call_id < 2**63),
        "its idempotency_key is not text": key is not None
        and (not isinstance(key, str) or "\x00" in key),
        "its starts_at or ends_at is not a time with a time zone": not all(
            value is None or (isinstance(value, datetime) and value.tzinfo is not None)
            for value in (booking.starts_at, booking.ends_at)
        ),
    }
    return next((problem for problem, found in wrong.items() if found), None)


def reconcile_calendar(
    conn: psycopg.Connection[Any],
    list_bookings: ListBookings,
    *,
    since: datetime,
    until: datetime | None = None,
    company_id: int | None = None,
    max_missing: int = DEFAULT_MAX_MISSING,
    source: str = "retell_webhook",
    orphaned_before: datetime | None = None,
) -> CalendarReport:
    """Compare the calendar's bookings that start in [since, until) with the database and make them
    agree where that is safe (docs/calendar.md); returns what was found and done."""
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise GuardError("reconcile_calendar needs times with a time zone (since, until)")
    until = until if until is not None else datetime.now(UTC) + DEFAULT_HORIZON
    if since >= until:
        raise GuardError(f"reconcile_calendar needs since before until ({since} >= {until})")
    # The first statement of each transaction that writes: durable, and pinned to company_id.
    begin_work = (
        (queries.DURABLE_COMMIT, ())
        if company_id is None
        else (queries.DURABLE_COMMIT_PINNED, (company_id,))
    )
    with own_transactions(conn):
        (listed_at,) = one_row(conn.execute(queries.CLOCK_TIMESTAMP, prepare=False).fetchone())
        try:
            bookings = _checked(list_bookings(since, until))
        except CalendarError:
            raise
        except Exception as error:
            raise CalendarError(
                f"the calendar client failed: {type(error).__name__}: {masked_message(error)}"
            ) from error
        orphans = _orphans(conn, orphaned_before)
        found: dict[str, list[Any]] = {name: [] for name in (*ID_LISTS, "in_sync", "open_already")}
        for booking in bookings:
            try:
                with conn.transaction():
                    conn.execute(*begin_work, prepare=False)
                    booked = (company_id, booking.uid, str(CalendarStatus(booking.status)))
                    times = (booking.starts_at, booking.ends_at)
                    rows = conn.execute(
                        queries.RECONCILE_CALENDAR_BOOKING,
                        (*booked, *times, booking.call_id, booking.idempotency_key),
                        prepare=False,
                    ).fetchall()
                    rows = [_recorded(conn, row, booking, source, orphans) for row in rows]
            except (psycopg.Error, GuardError) as error:
                if conn.broken or conn.closed:
                    raise
                # the uid is the calendar's id; the error's text is masked (a client's message
                # may quote what a customer said)
                _log.warning(
                    "calendar booking %s not reconciled: %s: %s",
                    booking.uid,
                    type(error).__name__,
                    masked_message(error),
                )
                found["failed"].append(booking.uid)
                continue
            _tally(found, booking.uid, rows)
        uids = sorted({booking.uid for booking in bookings})  # whatever their status
        missing_error = None
        try:
            with conn.transaction():
                conn.execute(*begin_work, prepare=False)
                missing = conn.execute(
                    queries.QUEUE_MISSING_IN_CALENDAR,
                    (company_id, since, until, listed_at, uids, max_missing),
                    prepare=False,
                ).fetchall()
            for appointment_id, _call, item, queued in missing:
                found["missing"].append(appointment_id)
                found["review_items" if queued else "open_already"].append(item)
        except psycopg.Error as error:
            if conn.broken or conn.closed:
                raise
            missing_error = masked_message(error)
            _log.warning("appointments missing from the calendar not compared: %s", missing_error)
        report = CalendarReport(
            since=since,
            until=until,
            listed=len(bookings),
            in_sync=len(found["in_sync"]),
            missing_error=missing_error,
            unchanged=len(found["in_sync"]) + len(found["open_already"]),
            orphaned_before=orphaned_before,
            orphaned=tuple(sorted(call_id for call_id, _service in orphans.values())),
            **{name: tuple(found[name]) for name in ID_LISTS},
        )
        counts = ", ".join(f"{name} {count}" for name, count in report.counts().items())
        _log.info("calendar reconciled: %s", counts)
        return report


def _recorded(
    conn: psycopg.Connection[Any],
    row: tuple[Any, ...],
    booking: CalendarBooking,
    source: str,
    orphans: dict[str, tuple[int, int]],
) -> tuple[Any, ...]:
    """A `record` answer recorded the way the booking path records (the appointment, the uid on
    the call, the attempt closed), in the reconciliation's transaction; an `in_flight` answer
    for the attempt of a failover's orphan too (`_orphans`: calling within its timeout, but no
    booking path will ever record it)."""
    key = booking.idempotency_key or ""
    orphan = orphans.get(key) if row[0] == "in_flight" else None
    if orphan is not None:
        call_id, service_id = orphan
    elif row[0] == "record":
        _action, _appointment, call_id, _company, _customer, service_id, key = row[:7]
    else:
        return row
    appointment_id = record_calendar_booking(conn, call_id, service_id, booking, source, key)
    if orphan is not None:
        del orphans[key]
    return ("record", appointment_id, *row[2:])


def failover_cutoff(conn: psycopg.Connection[Any]) -> datetime | None:
    """After a promotion: the commit time of the last transaction the server replayed from the old
    primary (pg_last_xact_replay_timestamp(), on the old primary's clock)."""
    with own_transactions(conn):
        replayed, in_recovery = one_row(
            conn.execute(queries.LAST_REPLAYED_COMMIT, prepare=False).fetchone()
        )
    if in_recovery:
        raise GuardError(
            "this server is a standby (in recovery): run the reconciliation on the promoted one"
        )
    return replayed if isinstance(replayed, datetime) else None


def _orphans(conn: psycopg.Connection[Any], before: datetime | None) -> dict[str, tuple[int, int]]:
    """The attempts journaled before a failover and still calling, by key: (call_id, service_id).
    The booking path that started one lost its connection with the old primary and will never
    record it."""
    if before is None:
        return {}
    if before.tzinfo is None:
        raise GuardError("reconcile_calendar needs orphaned_before with a time zone")
    rows = conn.execute(
        queries.ORPHANED_BOOKING_ATTEMPTS, (_MAX_ORPHANED, before), prepare=False
    ).fetchall()
    return {str(key): (int(call_id), int(service_id)) for key, call_id, service_id in rows}
