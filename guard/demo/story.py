"""What `guard demo` shows on its sample data, step by step."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from guard import queries
from guard.booking import BookingStatus, CalendarBooking, book_appointment
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.breaker.listeners import BreakerEvent
from guard.breaker.persistence import PostgresWriteBehind
from guard.breaker.registry import service_key
from guard.connection import connect
from guard.ops.detection import check_history
from guard.ops.dispatch.loop import Dispatcher
from guard.ops.dispatch.sinks import StdoutSink
from guard.retry import RetryPolicy
from guard.schema.validate import validate as validate_database


def data_story(url: str, echo: Callable[[str], None]) -> None:
    """The story on the sample data: find every problem, fix what is safe, queue the rest,
    enforce the constraints, and look again."""
    echo("4. Detection over the whole history (guard check --all):")
    _detection(url, echo)
    with connect(url) as conn:
        totals: Counter[str] = Counter()
        for _ in range(50):  # reconcile is capped per run; the scheduled job would continue hourly
            rows = conn.execute(queries.RECONCILE_EVERYTHING).fetchall()
            conn.commit()
            totals.update(dict(rows))
            if not any(affected for _, affected in rows):
                break
        echo("5. Reconciliation (guard reconcile), every change audited:")
        for action, affected in totals.items():
            echo(f"     {action:<32} {affected:>5}")
    report = validate_database(url)
    corrected = ", ".join(f"{rule} {n}" for rule, n in sorted(report.corrected.items()) if n)
    state = "all validated" if report.complete else "some still NOT VALID"
    echo(f"6. Staged enforcement (guard db validate): {corrected}; constraints {state}")
    echo("7. Detection again (guard check --all): what is left is for people, or to watch:")
    _detection(url, echo)


def _detection(url: str, echo: Callable[[str], None]) -> None:
    """The checks that found something, as `guard check --all` lists them (check, rows, rule)."""
    # (the demo prints its own steps, not the batches' progress)
    found = [row for row in check_history(url, None, lambda _progress: None) if row[2]]
    for check_id, rule_id, offending, *_ in found or [["(nothing)", "", 0]]:
        echo(f"     {check_id:<32} {offending:>5}  ({rule_id})" if rule_id else f"     {check_id}")


def booking_story(url: str, echo: Callable[[str], None]) -> None:
    """A booking through the guarded path, a calendar outage that opens the circuit, and the
    alerts it raised delivered by the dispatcher."""
    with connect(url) as conn:
        rows = conn.execute(queries.DEMO_BOOKABLE_CALLS).fetchall()
        conn.commit()
    free_calls = list(dict.fromkeys(call_id for call_id, _ in rows))
    service_id = rows[0][1]
    # The demo's circuits live in this process (it never writes to a Redis that may be
    # production's); being their only store, their transitions are their real history, written
    # behind to the demo's PostgreSQL as shared ones are, for `guard breaker list` to show.
    writer = PostgresWriteBehind(url)

    def record(event: BreakerEvent) -> None:
        writer(replace(event, shared=True))

    breakers = BreakerRegistry(
        in_memory=True,
        default=BreakerConfig(failure_threshold=3, cooldown_seconds=30),
        listeners=(record,),
    )
    breakers.writer = writer
    uids = iter(range(1, 1000))

    def calendar_up(idempotency_key: str) -> CalendarBooking:
        # (a real calendar is sent the key, and books once however often it is retried)
        return CalendarBooking(uid=f"demo-{next(uids)}", details={"key": idempotency_key})

    def calendar_down(idempotency_key: str) -> CalendarBooking:
        raise ConnectionError("calendar returned 503")

    echo("8. Booking through the guarded path (guard.booking.book_appointment):")
    with connect(url) as conn:
        outcome = book_appointment(
            conn, call_id=free_calls[0], service_id=service_id, book=calendar_up, breakers=breakers
        )
        echo(
            f"     call {outcome.call_id}: {outcome.status} (appointment {outcome.appointment_id},"
            f" booking {outcome.booking_uid}, validated)"
        )
        echo("   The calendar goes down:")
        # The retry's "giving up" warnings are what this step tells in its own lines: on stderr
        # they would break them up.
        logging.disable(logging.WARNING)
        try:
            for call_id in free_calls[1:5]:
                outcome = book_appointment(
                    conn,
                    call_id=call_id,
                    service_id=service_id,
                    book=calendar_down,
                    breakers=breakers,
                    retry_policy=RetryPolicy(max_attempts=1),
                )
                note = {
                    BookingStatus.FAILED: "calendar failed: rolled back, review item queued",
                    BookingStatus.QUEUED: "circuit OPEN: calendar not called, queued for a person",
                }.get(outcome.status, "")
                echo(f"     call {call_id}: {outcome.status} ({note})")
        finally:
            logging.disable(logging.NOTSET)
    breakers.close()  # drains the write-behind: the transitions are in PostgreSQL now

    echo(
        f"   The circuit {service_key(service_id)} is recorded in PostgreSQL"
        " (guard.breaker_state, guard.breaker_events): `guard breaker list` and"
        f" `guard breaker show {service_key(service_id)}` show it."
    )

    captured = io.StringIO()
    stats = Dispatcher(url, [(StdoutSink(captured), 0)]).run_once()
    lines = captured.getvalue().splitlines()
    rolled_back = [
        line for line in lines if json.loads(line).get("check_id") == "booking_rolled_back"
    ]
    echo(
        f"9. The dispatcher (guard watch --once) delivered {stats.alerts_delivered} alerts to"
        " stdout as JSON lines; the one for the first rolled-back booking:"
    )
    for line in (rolled_back or lines)[:1]:
        echo(f"     {line}")
