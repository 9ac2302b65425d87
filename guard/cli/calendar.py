"""`guard calendar reconcile`: compare the external calendar with the appointments, with the
calendar client of the user's own module (docs/calendar.md)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from guard import queries
from guard.booking import CalendarBooking, masked_message
from guard.calendar import (
    DEFAULT_MAX_MISSING,
    ID_LISTS,
    CalendarReport,
    ListBookings,
    failover_cutoff,
    reconcile_calendar,
)
from guard.cli.output import emit_json, emit_table, json_option, warn, when
from guard.cli.params import BIGINT, INT_MAX, moment
from guard.connection import connect, guard_function_errors, scalar
from guard.errors import ConfigurationError, GuardError, PermissionDenied

CLIENT_VARIABLE = "GUARD_CALENDAR_CLIENT"
# The longest window: a span beyond it is a typo, and a calendar asked for it would page forever.
_MAX_SPAN = timedelta(days=3660)
# The window's defaults; after a failover it starts this long before the last transaction the
# promoted server replayed (what the failover lost was booked after it, for a slot after it) and
# reaches a year ahead (a lost booking may be for any slot customers can book).
DEFAULT_SINCE, DEFAULT_UNTIL = timedelta(hours=24), timedelta(days=30)
FAILOVER_MARGIN, FAILOVER_UNTIL = timedelta(hours=1), timedelta(days=365)


def _checked_spec(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not all(value.partition(":")):
        raise click.BadParameter(
            "expected MODULE:CALLABLE, an importable module and a callable in it"
            " (myapp.calendar:list_bookings)"
        )
    return value


def load_client(spec: str) -> ListBookings:
    """The callable `list_bookings(since, until)` named by MODULE:CALLABLE, imported from the Python
    path and the current directory (as uvicorn and gunicorn do)."""
    module_name, attribute = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as error:
        raise ConfigurationError(
            f"--client: cannot import module {module_name}: {type(error).__name__}:"
            f" {masked_message(error)}"
        ) from None
    try:
        found = functools.reduce(getattr, attribute.split("."), found)
    except AttributeError:
        raise ConfigurationError(f"--client: {module_name} has no {attribute}") from None
    if not callable(found):
        raise ConfigurationError(f"--client: {spec} is a {type(found).__name__}, not a callable")

    def list_bookings(since: datetime, until: datetime) -> Iterable[CalendarBooking]:
        """A client that is a coroutine function (or returns an awaitable) is run to completion."""
        answer = found(since, until)
        if inspect.isawaitable(answer):
            answer = asyncio.run(_awaited(answer))
        return answer  # type: ignore[no-any-return]

    return list_bookings


async def _awaited(answer: Any) -> Any:
    return await answer


_KINDS = [
    ("recorded", "booked only in the calendar, recorded for its call"),
    ("cancelled", "cancelled in the calendar, cancelled here"),
    ("rescheduled", "at another time in the calendar, moved here to its time"),
    ("calendar_only", "booked only in the calendar, queued (calendar_only_booking)"),
    ("missing", "active here, absent from the calendar, queued (missing_in_calendar)"),
    ("in_flight", "being booked right now, left to the booking path"),
    ("failed", "not reconciled (logged)"),
    ("review_items", "review items opened by this run"),
]
# Listed after a failover only (--after-failover).
_ORPHANED = (
    "orphaned",
    "calls whose attempt from before the failover the calendar did not list, left to guard"
    " reconcile (booking_outcome_unknown)",
)


def _rows(report: CalendarReport) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["listed", report.listed, "bookings the calendar listed", ""],
        ["in_sync", report.in_sync, "the database agrees", ""],
    ]
    after_failover = [_ORPHANED] if report.orphaned_before is not None else []
    for name, meaning in [*_KINDS, *after_failover]:
        ids = getattr(report, name)
        rows.append([name, len(ids), meaning, " ".join(str(i) for i in ids)])
    rows.append(["unchanged", report.unchanged, "compared, nothing to write", ""])
    return rows


def _payload(report: CalendarReport, company_id: int | None) -> dict[str, Any]:
    return {
        "since": report.since,
        "until": report.until,
        "company_id": company_id,
        "changed": report.changed,
        "counts": report.counts(),
        **{name: list(getattr(report, name)) for name in ID_LISTS},
        "missing_error": report.missing_error,
        "orphaned_before": report.orphaned_before,
        "orphaned": list(report.orphaned),
        "wrote": report.written(),
        "unchanged": report.unchanged,
        "summary": report.summary(),
    }


@click.group()
def calendar() -> None:
    """Compare the external calendar (Cal.com) with the appointments."""


@calendar.command("reconcile")
@click.option(
    "--client",
    "client_spec",
    required=True,
    envvar=CLIENT_VARIABLE,
    metavar="MODULE:CALLABLE",
    callback=_checked_spec,
    help="Your calendar client: list_bookings(since, until) -> CalendarBooking list"
    f" (default: {CLIENT_VARIABLE}).",
)
@click.option(
    "--since",
    default=None,
    callback=lambda _ctx, _param, value: _when(value, ahead=False),
    help="Start of the window of start times: an ISO 8601 time or a span ago (24h, 7d)"
    " [default: 24h; with --after-failover an hour before the last transaction the promoted"
    " server replayed].",
)
@click.option(
    "--until",
    default=None,
    callback=lambda _ctx, _param, value: _when(value, ahead=True),
    help="End of the window: an ISO 8601 time or a span from now"
    f" [default: {DEFAULT_UNTIL.days}d; with --after-failover {FAILOVER_UNTIL.days}d].",
)
@click.option(
    "--after-failover",
    is_flag=True,
    help="Run on a promoted standby: also settle from the calendar the booking attempts the old"
    " primary journaled and never recorded (docs/ha.md, After a promotion).",
)
@click.option(
    "--company",
    "company_id",
    type=BIGINT,
    default=None,
    help="The company whose calendar this is (default: it serves every company you may act on).",
)
@click.option(
    "--max-missing",
    type=click.IntRange(0, INT_MAX),
    default=DEFAULT_MAX_MISSING,
    show_default=True,
    help="Refuse to queue more appointments missing from the calendar than this.",
)
@json_option
@click.pass_obj
def reconcile_command(
    obj: dict[str, str | None],
    client_spec: str,
    since: datetime | None,
    until: datetime | None,
    after_failover: bool,
    company_id: int | None,
    max_missing: int,
    as_json: bool,
) -> None:
    """Record what only the calendar has, cancel what it cancelled, queue the rest for review.

    Each booking in its own transaction; a second run with the same calendar answer changes
    nothing. Exits 1 when a booking could not be reconciled (the others are) or the database's
    side could not be compared. The last line says what it wrote (--json: "wrote",
    "summary")."""
    now = datetime.now(UTC)
    end = until or now + (FAILOVER_UNTIL if after_failover else DEFAULT_UNTIL)
    start = None if since is None else _checked_window(since, end)
    client = load_client(client_spec)
    with connect(obj["database_url"], application_name="guard calendar reconcile") as conn:
        with guard_function_errors():
            allowed = scalar(conn, queries.MAY_RECONCILE_CALENDAR)
            conn.commit()
        if not allowed:
            raise PermissionDenied(
                "permission denied for function guard.reconcile_calendar_booking"
            )
        cutoff = None
        if after_failover:  # the promoted server's last replayed transaction
            with guard_function_errors():
                cutoff = failover_cutoff(conn)
            if cutoff is None:
                warn(
                    "--after-failover: this server replayed nothing since it started (never a"
                    " standby, or restarted since its promotion): attempts still calling are left"
                    " to their booking path until their timeout"
                )
        if start is None:
            start = _checked_window(
                now - DEFAULT_SINCE if cutoff is None else cutoff - FAILOVER_MARGIN, end
            )
        with guard_function_errors():
            report = reconcile_calendar(
                conn,
                client,
                since=start,
                until=end,
                company_id=company_id,
                max_missing=max_missing,
                orphaned_before=cutoff,
            )
            audited = 0  # the audit rows written for the appointments the run recorded
            if report.recorded:
                ids = (list(report.recorded), cutoff)
                audited = int(scalar(conn, queries.AUDIT_CALENDAR_RESTORATIONS, ids) or 0)
                conn.commit()
    if as_json:
        emit_json({**_payload(report, company_id), "audited": audited})
    else:
        title = f"Calendar reconciliation, bookings starting {when(start)} to {when(end)}"
        if cutoff is not None:
            title += f", after a failover (last replayed transaction {when(cutoff)})"
        rows = _rows(report)
        if report.recorded:
            audit = "recorded appointments audited in guard.correction_audit"
            rows.insert(-1, ["audited", audited, audit, ""])
        emit_table(title, ["difference", "count", "meaning", "ids"], rows)
        click.echo(report.summary())
    problems = []
    if report.failed:
        problems.append(
            f"{len(report.failed)} booking(s) not reconciled ({' '.join(report.failed)[:200]})"
        )
    if report.missing_error:
        problems.append(
            f"appointments missing from the calendar not compared: {report.missing_error}"
        )
    if not report.ok:
        raise GuardError("; ".join(problems))


def _when(value: str | None, ahead: bool) -> datetime | None:
    return None if value is None else moment(value, ahead, longest=_MAX_SPAN)


def _checked_window(start: datetime, end: datetime) -> datetime:
    if start >= end:
        raise click.UsageError(f"--since ({when(start)}) must be before --until ({when(end)})")
    return start
