"""Tracing (guard.tracing, docs/tracing.md) with the real OpenTelemetry SDK and its in-memory
exporter: the spans of the booking path, the breaker's decisions and the dispatcher's sends, their
parents, attributes and error status; the trace id in the booking journal and in the alert and
review item a failed booking raises; no phone number anywhere in a span. The booking path runs as
the application login, the dispatcher as `guard watch --once` does. Without the extra, in a
process where `opentelemetry` cannot be imported, bookings work and nothing is imported. With a
synchronous span processor and the real OTLP exporter facing a closed port or a collector that
never answers, a booking takes no longer than untraced and its circuit stays closed."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.util._once import Once

from guard import tracing
from guard.booking import (
    BookingStatus,
    CalendarBooking,
    book_appointment,
)
from guard.breaker import BreakerConfig, BreakerRegistry, State
from guard.cli import main
from guard.retry import RetryPolicy
from tests.dispatch.conftest import insert_alerts
from tests.security.conftest import connect_as, login_roles  # noqa: F401  (fixture)

PHONE = "+49 30 1234567"
RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=0.001, max_delay_seconds=0.001)


class _Finished(InMemorySpanExporter):
    """The in-memory exporter, read once guard.tracing's thread has ended every span."""

    def get_finished_spans(self) -> tuple[ReadableSpan, ...]:
        assert tracing.flush(10.0)
        return super().get_finished_spans()


@contextmanager
def _provider_of(exporter: Any) -> Iterator[None]:
    """The SDK as an application sets it up, with a synchronous processor. The global provider
    can be set once per process; it is put back afterwards the way OpenTelemetry's own test
    utilities do, so that later tests in this worker run untraced again."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracing._unset_until = 0.0  # not the "none yet" an earlier test in this worker saw
    assert tracing.active()
    try:
        yield
    finally:
        provider.shutdown()  # an exporter still retrying gives up
        assert tracing.flush(10.0), "the spans left are handed over once the exporter stops"
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None
        tracing._provider_set, tracing._unset_until = False, 0.0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = _Finished()
    with _provider_of(exporter):
        yield exporter


@pytest.fixture
def booking_url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        admin.execute("INSERT INTO services (id, company_id, name) VALUES (5, 1, 'S')")
        admin.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, from_number)"
            " SELECT g, 1, 'a' || g, %s FROM generate_series(1, 4) AS g",
            (PHONE,),
        )
    return db_url


def _calendar(answers: list[bool]) -> Any:
    """A calendar that fails (quoting the caller's number, as real ones do) or books."""

    def book(key: str) -> CalendarBooking:
        if not answers.pop(0):
            raise ConnectionError(f"calendar unreachable while booking for {PHONE}")
        return CalendarBooking(uid=f"uid-{key[:8]}", details={"phone": PHONE})

    return book


def _book(url: str, login: str, call_id: int, answers: list[bool], breakers: Any) -> Any:
    with connect_as(url, login) as app:
        return book_appointment(
            app,
            call_id=call_id,
            service_id=5,
            book=_calendar(answers),
            breakers=breakers,
            retry_policy=RETRY,
        )


def _by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for one in sorted(finished, key=lambda s: s.start_time or 0):
        named.setdefault(one.name, []).append(one)
    return named


def _parent(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None, f"{child.name} has no parent"
    context = parent.get_span_context()
    assert context is not None
    return child.parent.span_id == context.span_id


def _trace_hex(one: ReadableSpan) -> str:
    context = one.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}"


def _nothing_personal(finished: tuple[ReadableSpan, ...]) -> None:
    """No phone number (nor any part of the calendar's answer) in a span's attributes, status,
    events or links."""
    for one in finished:
        text = json.dumps(
            {
                "attributes": dict(one.attributes or {}),
                "status": one.status.description,
                "events": [(e.name, dict(e.attributes or {})) for e in one.events],
            }
        )
        assert "1234567" not in text and "uid-" not in text, (one.name, text)


def test_a_booking_after_a_retry_is_one_trace_of_nested_spans(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    breakers = BreakerRegistry(in_memory=True, default=BreakerConfig(failure_threshold=5))
    outcome = _book(booking_url, login_roles["application"], 1, [False, True], breakers)
    assert outcome.status is BookingStatus.BOOKED

    finished = spans.get_finished_spans()
    named = _by_name(finished)
    [booking] = named["guard.booking"]
    [begin] = named["guard.booking.begin"]
    [calendar] = named["guard.booking.calendar"]
    [record] = named["guard.booking.record"]
    first_try, second_try = named["guard.breaker.call"]
    assert booking.parent is None
    for child in (begin, calendar, record):
        assert _parent(child, booking), child.name
    assert _parent(first_try, calendar) and _parent(second_try, calendar)
    assert "guard.booking.rollback" not in named
    assert {_trace_hex(one) for one in finished} == {_trace_hex(booking)}, "one trace"

    assert dict(booking.attributes or {}) == {
        "guard.call_id": 1,
        "guard.service_id": 5,
        "guard.booking.status": "booked",
    }
    assert booking.status.status_code is StatusCode.UNSET
    assert (begin.attributes or {})["guard.booking.begin_outcome"] == "started"
    assert (calendar.attributes or {})["guard.booking.calendar_calls"] == 2
    assert dict(record.attributes or {}) == {"guard.booking.record_outcome": "booked"}
    assert record.status.status_code is StatusCode.UNSET
    for attempt in (first_try, second_try):
        assert (attempt.attributes or {})["guard.breaker.key"] == "appointment_booking:service:5"
        assert (attempt.attributes or {})["guard.breaker.decision"] == "allowed"
        assert (attempt.attributes or {})["guard.breaker.state"] == "closed"
    assert first_try.status.status_code is StatusCode.ERROR
    assert first_try.status.description == "ConnectionError"
    assert second_try.status.status_code is StatusCode.UNSET
    _nothing_personal(finished)

    with psycopg.connect(booking_url) as admin:
        row = admin.execute("SELECT trace_id FROM guard.booking_attempts").fetchone()
    assert row == (_trace_hex(booking),), "the journal row leads to the trace"


def test_a_failed_booking_marks_its_spans_and_its_alert_carries_the_trace(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    breakers = BreakerRegistry(in_memory=True, default=BreakerConfig(failure_threshold=5))
    outcome = _book(booking_url, login_roles["application"], 2, [False, False, False], breakers)
    assert outcome.status is BookingStatus.FAILED

    finished = spans.get_finished_spans()
    named = _by_name(finished)
    [booking] = named["guard.booking"]
    [calendar] = named["guard.booking.calendar"]
    [rollback] = named["guard.booking.rollback"]
    assert _parent(rollback, booking) and _parent(calendar, booking)
    assert len(named["guard.breaker.call"]) == 3
    assert booking.status.status_code is StatusCode.ERROR
    assert booking.status.description == "booking failed"
    assert (booking.attributes or {})["guard.booking.status"] == "failed"
    assert calendar.status.status_code is StatusCode.ERROR
    assert (calendar.attributes or {})["error.type"] == "ConnectionError"
    assert (calendar.attributes or {})["guard.booking.calendar_calls"] == 3
    assert (rollback.attributes or {})["guard.booking.review_reason"] == (
        "calendar_booking_failure"
    )
    assert rollback.status.status_code is StatusCode.UNSET
    _nothing_personal(finished)

    trace_id = _trace_hex(booking)
    with psycopg.connect(booking_url) as admin:
        journal = admin.execute("SELECT state, trace_id FROM guard.booking_attempts").fetchone()
        alert = admin.execute(
            "SELECT details ->> 'trace_id' FROM guard.alerts WHERE check_id = 'booking_rolled_back'"
        ).fetchone()
        review = admin.execute(
            "SELECT details ->> 'trace_id' FROM guard.review_items WHERE call_id = 2"
        ).fetchone()
    assert journal == ("failed", trace_id)
    assert alert == (trace_id,), "the alert the booking path raised leads to its trace"
    assert review == (trace_id,)


def test_a_refused_call_is_a_refused_decision_on_an_open_circuit(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    breakers = BreakerRegistry(in_memory=True)
    breakers.service(5).force_open("maintenance")
    outcome = _book(booking_url, login_roles["application"], 3, [True], breakers)
    assert outcome.status is BookingStatus.QUEUED

    named = _by_name(spans.get_finished_spans())
    [decision] = named["guard.breaker.call"]
    [booking] = named["guard.booking"]
    [calendar] = named["guard.booking.calendar"]
    assert _parent(decision, calendar)
    assert (decision.attributes or {})["guard.breaker.decision"] == "refused"
    assert (decision.attributes or {})["guard.breaker.state"] == "forced_open"
    assert (decision.attributes or {})["guard.breaker.refused_because"] == "open"
    assert decision.status.status_code is StatusCode.ERROR
    assert (calendar.attributes or {})["guard.booking.calendar_calls"] == 0
    assert booking.status.status_code is StatusCode.ERROR
    assert (booking.attributes or {})["guard.booking.status"] == "queued"


def test_a_booking_that_does_not_validate_fails_its_record_span(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    with psycopg.connect(booking_url, autocommit=True) as admin:
        # A broken database: the flags are no longer derived, so validation must catch it.
        admin.execute("ALTER TABLE appointments DISABLE TRIGGER guard_appointments_sync_insert")
    breakers = BreakerRegistry(in_memory=True)
    outcome = _book(booking_url, login_roles["application"], 4, [True], breakers)
    assert (outcome.status, outcome.reason) == (BookingStatus.FAILED, "call_flags_disagree")

    named = _by_name(spans.get_finished_spans())
    [record] = named["guard.booking.record"]
    assert record.status.status_code is StatusCode.ERROR, "the booking was rolled back"
    assert dict(record.attributes or {}) == {
        "guard.booking.record_outcome": "failed",
        "guard.booking.failure_reason": "call_flags_disagree",
    }
    assert "guard.booking.rollback" not in named, "guard.record_booking rolled it back itself"


def test_a_booking_run_from_asyncio_in_a_thread_makes_the_same_spans(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    """README's way from asyncio, `asyncio.to_thread`: the thread runs in a copy
    of the caller's context, so the booking's spans are the synchronous path's."""
    answers = [False, True]

    def run() -> Any:
        with psycopg.connect(booking_url, user=login_roles["application"]) as app:
            return book_appointment(
                app,
                call_id=1,
                service_id=5,
                book=_calendar(answers),
                breakers=BreakerRegistry(in_memory=True),
                retry_policy=RETRY,
            )

    async def from_the_loop() -> Any:
        return await asyncio.to_thread(run)

    assert asyncio.run(from_the_loop()).status is BookingStatus.BOOKED
    finished = spans.get_finished_spans()
    named = _by_name(finished)
    [booking] = named["guard.booking"]
    [calendar] = named["guard.booking.calendar"]
    [record] = named["guard.booking.record"]
    tries = named["guard.breaker.call"]
    assert _parent(calendar, booking) and _parent(record, booking)
    assert dict(record.attributes or {}) == {"guard.booking.record_outcome": "booked"}
    assert len(tries) == 2 and all(_parent(one, calendar) for one in tries)
    assert [one.status.status_code for one in tries] == [StatusCode.ERROR, StatusCode.UNSET]
    assert (calendar.attributes or {})["guard.booking.calendar_calls"] == 2
    _nothing_personal(finished)
    with psycopg.connect(booking_url) as admin:
        row = admin.execute("SELECT trace_id FROM guard.booking_attempts").fetchone()
    assert row == (_trace_hex(booking),)


def test_a_dispatcher_send_is_a_span_per_message(db_url: str, spans: InMemorySpanExporter) -> None:
    insert_alerts(db_url, 2)
    args = ["--database-url", db_url, "watch", "--once", "--channel", "stdout"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output

    sends = _by_name(spans.get_finished_spans())["guard.dispatch.send"]
    assert [dict(one.attributes or {}) for one in sends] == [
        {
            "guard.dispatch.channel": "stdout",
            "guard.dispatch.kind": "alert",
            "guard.dispatch.alerts": 1,
        }
    ] * 2
    assert all(one.status.status_code is StatusCode.UNSET for one in sends)


def test_untraced_when_no_provider_is_set(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    """The API installed, no SDK set up by the application: nothing recorded, no trace id."""
    assert not tracing.active()
    assert tracing.trace_id() is None
    breakers = BreakerRegistry(in_memory=True)
    outcome = _book(booking_url, login_roles["application"], 1, [True], breakers)
    assert outcome.status is BookingStatus.BOOKED
    with psycopg.connect(booking_url) as admin:
        assert admin.execute("SELECT trace_id FROM guard.booking_attempts").fetchone() == (None,)


@pytest.fixture(params=["closed_port", "blackhole"])
def dead_collector(request: pytest.FixtureRequest) -> Iterator[str]:
    """An OTLP endpoint on the loopback where nothing listens, or where a listener takes the
    connection and never answers (nothing accepts it: the kernel's backlog holds it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces"
    if request.param == "closed_port":
        listener.close()
        yield url
        return
    listener.listen(128)
    try:
        yield url
    finally:
        listener.close()


def _timed_bookings(url: str, login: str, call_ids: range, breakers: Any) -> float:
    """The median of some bookings with a healthy calendar, in seconds."""
    took = []
    for call_id in call_ids:
        started = time.perf_counter()
        assert _book(url, login, call_id, [True], breakers).status is BookingStatus.BOOKED
        took.append(time.perf_counter() - started)
    return statistics.median(took)


@pytest.mark.serial
def test_a_dead_collector_adds_nothing_to_a_booking_nor_to_its_circuit(
    booking_url: str,
    login_roles: dict[str, str],  # noqa: F811
    dead_collector: str,
) -> None:
    """A SimpleSpanProcessor exports inside each span's end; facing a dead collector the real
    OTLP exporter waits its timeout (1 s here) and retries. Booking Guard ends its spans on a
    thread of its own, so the booking never waits (a booking ends six spans: waiting on them
    would add 6 s; the bound is half of one export's wait), and the guarded call (held open
    while the booking is recorded, under a 0.5 s timeout) never sees the exporter's time."""
    with psycopg.connect(booking_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO calls (id, company_id, retell_call_id)"
            " SELECT g, 1, 'b' || g FROM generate_series(5, 8) AS g"
        )
    login = login_roles["application"]
    config = BreakerConfig(failure_threshold=1, call_timeout_seconds=0.5)
    breakers = BreakerRegistry(in_memory=True, default=config)
    _timed_bookings(booking_url, login, range(1, 2), breakers)  # connections, caches: warm
    untraced = _timed_bookings(booking_url, login, range(2, 5), breakers)
    with _provider_of(OTLPSpanExporter(endpoint=dead_collector, timeout=1.0)):
        traced = _timed_bookings(booking_url, login, range(5, 9), breakers)
        circuit = breakers.service(5)
        assert circuit.state is State.CLOSED
        assert (circuit.failed_calls, circuit.timed_out_calls) == (0, 0)
    assert traced < untraced + 0.5, (traced, untraced)


_WITHOUT_OPENTELEMETRY = """
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed: every import fails
import psycopg
from guard import tracing
from guard.booking import BookingStatus, CalendarBooking, book_appointment
from guard.breaker import BreakerRegistry

with psycopg.connect(sys.argv[1]) as conn:
    outcome = book_appointment(
        conn, call_id=1, service_id=5, book=lambda key: CalendarBooking(uid="u1"),
        breakers=BreakerRegistry(in_memory=True),
    )
assert outcome.status is BookingStatus.BOOKED, outcome
assert not tracing.active() and tracing.trace_id() is None
loaded = [name for name in sys.modules if name.startswith("opentelemetry") and sys.modules[name]]
assert loaded == [], loaded
print("booked without opentelemetry")
"""


def test_without_the_extra_bookings_work_and_nothing_is_imported(booking_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OPENTELEMETRY, booking_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "booked without opentelemetry"


def test_guard_version_imports_neither_tracing_nor_opentelemetry() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "guard.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "guard" in imported, "importtime lists what was imported"
    assert not {name for name in imported if "opentelemetry" in name or "tracing" in name}
