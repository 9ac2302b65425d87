"""What the service's circuit counts on the booking path: a booking the calendar made that the
database refused or that did not validate is a failure, like a failed calendar call; one the
database could not record because it went away is not (the calendar answered); a booking refused
before the calendar is asked counts neither way. Real PostgreSQL (every outcome committed before
the next booking starts), real Redis behind the breaker, a real calendar over HTTP that counts
the requests reaching it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from guard.booking import (
    BookingStatus,
    CalendarBooking,
    book_appointment,
    recover_attempts,
)
from guard.breaker import BreakerConfig, BreakerRegistry, State
from guard.errors import GuardError
from guard.retry import RetryPolicy
from tests.support.calendar_server import CalendarServer
from tests.support.exposition import scrape
from tests.support.queries import execute, fetch_all, fetch_one
from tests.support.seeds import seed_calls_to_book

THRESHOLD = 3
CONFIG = BreakerConfig(
    failure_threshold=THRESHOLD, success_threshold=1, cooldown_seconds=1, call_timeout_seconds=5
)
NO_RETRY = RetryPolicy(max_attempts=1)
_services = iter(range(5000, 100000))


@pytest.fixture
def calendar() -> Iterator[CalendarServer]:
    with CalendarServer() as server:
        yield server


@pytest.fixture
def service(db_url: str) -> int:
    """One company, a service of its own (its own circuit) and eight calls."""
    service_id = next(_services)
    seed_calls_to_book(db_url, service_id, 8, customer=True)
    return service_id


def _break_validation(url: str, broken: bool) -> None:
    """A broken database: the call's flags are no longer derived, so validation fails."""
    verb = "DISABLE" if broken else "ENABLE"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE appointments {verb} TRIGGER guard_appointments_sync_insert")


def _book(
    url_or_conn: str | psycopg.Connection[Any],
    call_id: int,
    service: int,
    book: Any,
    breakers: BreakerRegistry,
) -> Any:
    """Book without retries, on a connection of its own or on the one given."""
    if isinstance(url_or_conn, str):
        with psycopg.connect(url_or_conn) as conn:
            return _book(conn, call_id, service, book, breakers)
    return book_appointment(
        url_or_conn,
        call_id=call_id,
        service_id=service,
        book=book,
        breakers=breakers,
        retry_policy=NO_RETRY,
    )


def _circuit(breakers: BreakerRegistry, service: int) -> tuple[State, int]:
    snapshot = breakers.service(service).snapshot()
    return snapshot.state, snapshot.failure_count


def _committed(url: str) -> list[tuple[int, str, int]]:
    """The journal and the calls as another session sees them: what was committed."""
    return fetch_all(
        url,
        "SELECT b.call_id, b.state, (SELECT count(*) FROM appointments AS a"
        " WHERE a.call_id = b.call_id) FROM guard.booking_attempts AS b ORDER BY b.id",
    )


def test_bookings_that_do_not_validate_open_the_circuit_at_the_threshold(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    _break_validation(db_url, True)
    for call_id in range(1, THRESHOLD):
        outcome = _book(db_url, call_id, service, calendar.book, breakers)
        assert (outcome.status, outcome.reason) == (BookingStatus.FAILED, "call_flags_disagree")
    assert _circuit(breakers, service) == (State.CLOSED, THRESHOLD - 1), "one short: closed"

    outcome = _book(db_url, THRESHOLD, service, calendar.book, breakers)
    assert outcome.status is BookingStatus.FAILED
    assert _circuit(breakers, service)[0] is State.OPEN, "the third failed validation opens it"
    assert calendar.requests == THRESHOLD

    _break_validation(db_url, False)  # the database is healthy again: the circuit decides
    fourth = _book(db_url, THRESHOLD + 1, service, calendar.book, breakers)
    assert fourth.status is BookingStatus.QUEUED
    assert calendar.requests == THRESHOLD, "the fourth booking never reached the calendar"
    committed = _committed(db_url)
    assert [state for _call, state, _n in committed[:THRESHOLD]] == ["failed"] * THRESHOLD
    assert all(appointments == 0 for _call, _state, appointments in committed)


def test_a_recording_the_database_refuses_at_commit_counts(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """The refusal comes with the COMMIT of the recording (a deferred constraint trigger): the
    booking is rolled back and queued, and the circuit counts it."""
    execute(
        db_url,
        (
            "CREATE FUNCTION public.refuse_appointment() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'appointments are refused'; END$$"
        ),
        (
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON appointments"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
            " EXECUTE FUNCTION public.refuse_appointment()"
        ),
    )
    for call_id in range(1, THRESHOLD + 1):
        outcome = _book(db_url, call_id, service, calendar.book, breakers)
        assert outcome.status is BookingStatus.FAILED
        assert outcome.reason == "recording failed: SQLSTATE P0001"  # raise_exception
        expected = State.OPEN if call_id == THRESHOLD else State.CLOSED
        assert _circuit(breakers, service)[0] is expected, call_id
    assert [state for _call, state, _n in _committed(db_url)] == ["failed"] * THRESHOLD
    assert _book(db_url, 4, service, calendar.book, breakers).status is BookingStatus.QUEUED
    assert calendar.requests == THRESHOLD


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _recover(url: str, booked: dict[str, CalendarBooking]) -> tuple[int, int, int]:
    """The journal's recovery once the database is back, asking the calendar by key."""
    with psycopg.connect(url) as conn:
        report = recover_attempts(conn, booked.get, older_than_seconds=0)
    return report.recovered, report.failed, report.unsettled


def _review_items(url: str) -> int:
    row = fetch_one(url, "SELECT count(*) FROM guard.review_items")
    assert row is not None
    return int(row[0])


def test_a_database_gone_after_the_calendar_answered_is_no_failure(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """The calendar booked, then the server ended the connection (as a restart or a failover
    does) before the booking was recorded, THRESHOLD times: the calendar answered, so the circuit
    stays closed and the next booking is booked, not queued; recovery records the three when the
    database is back, with no review item."""
    booked: dict[str, CalendarBooking] = {}
    for call_id in range(1, THRESHOLD + 1):
        with psycopg.connect(db_url) as conn:

            def book(key: str, pid: int = conn.info.backend_pid) -> CalendarBooking:
                booking = booked[key] = calendar.book(key)
                _terminate(db_url, pid)
                return booking

            with pytest.raises(psycopg.OperationalError):
                _book(conn, call_id, service, book, breakers)
    assert _circuit(breakers, service) == (State.CLOSED, 0), "no failure of the calendar"
    after = _book(db_url, THRESHOLD + 1, service, calendar.book, breakers)
    assert after.status is BookingStatus.BOOKED
    assert [state for _call, state, _n in _committed(db_url)] == ["calling"] * THRESHOLD + [
        "booked"
    ]
    assert _recover(db_url, booked) == (THRESHOLD, 0, 0)
    committed = _committed(db_url)
    assert [state for _call, state, _n in committed] == ["booked"] * (THRESHOLD + 1)
    assert all(appointments == 1 for _call, _state, appointments in committed)
    assert _review_items(db_url) == 0, "nothing for a person: the calendar confirmed them all"
    assert calendar.requests == THRESHOLD + 1


def test_a_database_that_takes_no_writes_after_the_calendar_answered_is_no_failure(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """A connection that stays open while the server takes no writes (a demoted primary behind
    a pooler, SQLSTATE 25006): the booking is not rolled back and queued for a person, the
    circuit counts no failure, and recovery records it."""
    booked: dict[str, CalendarBooking] = {}
    seen = []
    with psycopg.connect(db_url, autocommit=True) as conn:

        def book(key: str) -> CalendarBooking:
            booking = booked[key] = calendar.book(key)
            conn.execute("SET default_transaction_read_only = on")
            return booking

        for call_id in range(1, THRESHOLD + 1):
            try:
                _book(conn, call_id, service, book, breakers)
            except psycopg.Error as error:
                seen.append(type(error).__name__)
            conn.execute("SET default_transaction_read_only = off")
    assert seen == ["ReadOnlySqlTransaction"] * THRESHOLD
    assert _circuit(breakers, service) == (State.CLOSED, 0)
    assert _review_items(db_url) == 0
    assert _recover(db_url, booked) == (THRESHOLD, 0, 0)
    assert _review_items(db_url) == 0
    assert _book(db_url, THRESHOLD + 1, service, calendar.book, breakers).status is (
        BookingStatus.BOOKED
    )


def test_a_recorded_booking_resets_the_count(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    _break_validation(db_url, True)
    for call_id in (1, 2):
        assert _book(db_url, call_id, service, calendar.book, breakers).status is (
            BookingStatus.FAILED
        )
    _break_validation(db_url, False)
    assert _book(db_url, 3, service, calendar.book, breakers).status is BookingStatus.BOOKED
    assert _circuit(breakers, service) == (State.CLOSED, 0), "the recorded booking is a success"
    _break_validation(db_url, True)
    for call_id in (4, 5):
        assert _book(db_url, call_id, service, calendar.book, breakers).status is (
            BookingStatus.FAILED
        )
    assert _circuit(breakers, service) == (State.CLOSED, 2)
    assert calendar.requests == 5


def test_bookings_refused_before_the_calendar_count_neither_way(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """A call that does not exist, a call already booked: the caller's, refused before the
    calendar is asked; the circuit neither fails nor succeeds for them."""
    assert _book(db_url, 1, service, calendar.book, breakers).status is BookingStatus.BOOKED
    _break_validation(db_url, True)
    assert _book(db_url, 2, service, calendar.book, breakers).status is BookingStatus.FAILED
    assert _circuit(breakers, service) == (State.CLOSED, 1)
    for _ in range(THRESHOLD):
        with pytest.raises(GuardError, match="does not exist"):
            _book(db_url, 999, service, calendar.book, breakers)
        already = _book(db_url, 1, service, calendar.book, breakers)
        assert already.status is BookingStatus.ALREADY_BOOKED
    assert _circuit(breakers, service) == (State.CLOSED, 1), "no failure added, none reset"
    assert calendar.requests == 2


def test_a_probe_is_judged_by_its_recording(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """After the cooldown, the probe's booking decides: not validated, the circuit opens again;
    recorded, it closes (success_threshold 1)."""
    _break_validation(db_url, True)
    for call_id in range(1, THRESHOLD + 1):
        _book(db_url, call_id, service, calendar.book, breakers)
    assert _circuit(breakers, service)[0] is State.OPEN
    time.sleep(CONFIG.cooldown_seconds + 0.2)  # the cooldown, not a measurement
    assert _book(db_url, 4, service, calendar.book, breakers).status is BookingStatus.FAILED
    assert _circuit(breakers, service)[0] is State.OPEN, "a probe that did not validate reopens"
    _break_validation(db_url, False)
    time.sleep(CONFIG.cooldown_seconds + 0.2)
    assert _book(db_url, 5, service, calendar.book, breakers).status is BookingStatus.BOOKED
    assert _circuit(breakers, service)[0] is State.CLOSED, "a recorded probe closes it"
    assert calendar.requests == THRESHOLD + 2


def test_a_calendar_that_fails_counts_as_before(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    calendar.down = True
    for call_id in range(1, THRESHOLD + 1):
        outcome = _book(db_url, call_id, service, calendar.book, breakers)
        assert (outcome.status, outcome.reason) == (
            BookingStatus.FAILED,
            "CalendarUnavailableError",
        )
    assert _circuit(breakers, service)[0] is State.OPEN
    calendar.down = False
    assert _book(db_url, 4, service, calendar.book, breakers).status is BookingStatus.QUEUED
    assert calendar.requests == THRESHOLD


def test_a_retried_calendar_call_is_not_retried_after_the_calendar_answered(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """A policy that retries everything still sends one request per booking that the calendar
    answered: the booking not recorded is the booking's outcome, not a reason to book again."""
    _break_validation(db_url, True)
    with psycopg.connect(db_url) as conn:
        outcome = book_appointment(
            conn,
            call_id=1,
            service_id=service,
            book=calendar.book,
            breakers=breakers,
            retry_policy=RetryPolicy(max_attempts=3, retry_on=lambda _error: True),
        )
    assert outcome.status is BookingStatus.FAILED
    assert calendar.requests == 1
    assert _circuit(breakers, service) == (State.CLOSED, 1)


def test_a_booking_queued_behind_the_open_circuit_is_no_failed_booking(
    db_url: str, service: int, breakers: BreakerRegistry, calendar: CalendarServer
) -> None:
    """Queued because the circuit is open: its own outcome in the journal and in the counters,
    and the failure-rate check leaves the call out (neither a call nor a failure of the rate)."""
    _break_validation(db_url, True)
    for call_id in range(1, THRESHOLD + 1):
        _book(db_url, call_id, service, calendar.book, breakers)
    queued = _book(db_url, THRESHOLD + 1, service, calendar.book, breakers)
    assert queued.status is BookingStatus.QUEUED
    assert [state for _call, state, _n in _committed(db_url)] == ["failed"] * THRESHOLD + ["queued"]
    text = scrape(db_url)
    assert _sample(text, 'guard_bookings_total{outcome="failed"}') == THRESHOLD
    assert _sample(text, 'guard_bookings_total{outcome="queued"}') == 1
    with psycopg.connect(db_url, autocommit=True) as conn:
        # the rate's own rules, here: any share of failures over none in the last weeks, from
        # THRESHOLD failures on; the queued call would make it THRESHOLD + 1 of 8
        conn.execute(
            "UPDATE guard.settings SET value = %s WHERE key = 'anomaly_min_failures'",
            (str(THRESHOLD),),
        )
        row = conn.execute(
            "SELECT (detail ->> 'recent_failures')::int, (detail ->> 'recent_calls')::int"
            " FROM guard.check_booking_failure_anomaly WHERE company_id = 1"
        ).fetchone()
    assert row == (THRESHOLD, 7), "3 failures of the 7 calls not queued (8 calls, 1 queued)"


def _sample(text: str, series: str) -> float:
    match = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in the exposition"
    return float(match.group(1))
