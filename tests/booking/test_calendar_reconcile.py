"""The calendar's reconciliation (guard.calendar.reconcile_calendar) against real PostgreSQL. The
calendar is a plain callable returning bookings: the application's client, not what is tested."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from guard.booking import CalendarBooking, CalendarStatus
from guard.calendar import (
    CalendarError,
    CalendarReport,
    reconcile_calendar,
)
from guard.errors import GuardError
from tests.support.queries import execute, fetch_all, fetch_one

SERVICE = 7
PHONE = "+49 30 1234567"
NOW = datetime.now(UTC)
SINCE = NOW - timedelta(days=1)
UNTIL = NOW + timedelta(days=30)
SLOT = NOW + timedelta(days=2)


@pytest.fixture
def calendar_db(db_url: str) -> str:
    """Companies 1 and 2; calls 1-5 of company 1, call 6 of company 2; service 7."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
        conn.execute("INSERT INTO services (id, company_id, name) VALUES (%s, 1, 'S')", (SERVICE,))
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " SELECT g, CASE WHEN g = 6 THEN 2 ELSE 1 END, 'c' || g, 'in_progress'"
            " FROM generate_series(1, 6) AS g"
        )
    return db_url


def _booking(uid: str, **fields: Any) -> CalendarBooking:
    fields.setdefault("starts_at", SLOT)
    fields.setdefault("ends_at", SLOT + timedelta(minutes=30))
    return CalendarBooking(uid=uid, **fields)


def _run(url: str, bookings: list[CalendarBooking], **options: Any) -> CalendarReport:
    with psycopg.connect(url) as conn:
        return reconcile_calendar(
            conn, lambda _since, _until: list(bookings), since=SINCE, until=UNTIL, **options
        )


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    return fetch_all(url, query, params)


def _state(url: str) -> list[list[tuple[Any, ...]]]:
    """Everything a reconciliation may write, to compare before and after a second run."""
    return [
        _rows(url, "SELECT * FROM appointments ORDER BY id"),
        _rows(url, "SELECT * FROM calls ORDER BY id"),
        _rows(url, "SELECT id, reason, status, details FROM guard.review_items ORDER BY id"),
        _rows(url, "SELECT * FROM guard.booking_attempts ORDER BY id"),
        _rows(url, "SELECT id FROM guard.correction_audit ORDER BY id"),
    ]


def _appointment(url: str, uid: str) -> int:
    row = fetch_one(
        url,
        "INSERT INTO appointments (company_id, call_id, service_id, calcom_v2_booking_id,"
        " source, starts_at, ends_at, created_at)"
        " SELECT company_id, id, %s, %s, 'retell_webhook', %s, %s, now() - interval '1 hour'"
        " FROM calls WHERE id = 3 RETURNING id",
        (SERVICE, uid, SLOT, SLOT + timedelta(minutes=30)),
    )
    assert row is not None
    return int(row[0])


def test_a_booking_only_in_the_calendar_of_a_known_call_is_recorded(calendar_db: str) -> None:
    calendar = [_booking("uid-1", call_id=1, details={"attendee_phone": PHONE})]
    report = _run(calendar_db, calendar)
    assert len(report.recorded) == 1 and report.changed and report.ok
    [(call_id, uid, source, starts_at, status)] = _rows(
        calendar_db,
        "SELECT call_id, calcom_v2_booking_id, source, starts_at, status FROM appointments"
        " WHERE id = %s",
        report.recorded[0],
    )
    assert (call_id, uid, source, starts_at, status) == (
        1,
        "uid-1",
        "retell_webhook",
        SLOT,
        "scheduled",
    )
    [flags] = _rows(
        calendar_db,
        "SELECT booking_id, appointment_made, session_outcome, booking_confirmed FROM calls"
        " WHERE id = 1",
    )
    assert flags == ("uid-1", True, "appointment_booked", True), "the triggers derived the flags"

    again = _run(calendar_db, calendar)
    assert (again.recorded, again.in_sync, again.changed) == ((), 1, False)
    assert _rows(calendar_db, "SELECT count(*) FROM appointments") == [(1,)]


def test_a_booking_of_an_attempt_whose_outcome_is_unknown_is_recovered(calendar_db: str) -> None:
    """The calendar booked with the attempt's idempotency key (kept in its metadata), and the
    booking path never heard back: the appointment is recorded and the attempt closed."""
    [(key,)] = _rows(
        calendar_db,
        "SELECT idempotency_key FROM set_config('synchronous_commit', 'on', TRUE),"
        " guard.begin_booking_attempt(2, %s)",
        SERVICE,
    )
    execute(
        calendar_db,
        "UPDATE guard.booking_attempts SET created_at = created_at - interval '1 hour'",
        "SELECT guard.reconcile()",
    )
    assert _rows(calendar_db, "SELECT state FROM guard.booking_attempts") == [("unknown",)]
    report = _run(calendar_db, [_booking("uid-key", idempotency_key=key)])
    assert len(report.recorded) == 1
    [(state, appointment_id, service_id)] = _rows(
        calendar_db,
        "SELECT b.state, b.appointment_id, a.service_id FROM guard.booking_attempts AS b"
        " JOIN appointments AS a ON a.id = b.appointment_id",
    )
    assert (state, appointment_id, service_id) == ("recovered", report.recorded[0], SERVICE)
    assert _rows(
        calendar_db,
        "SELECT status FROM guard.review_items WHERE reason = 'booking_outcome_unknown'",
    ) == [("resolved",)], "its review item is closed with it"


def test_a_booking_of_an_unknown_call_is_queued_for_review(calendar_db: str) -> None:
    report = _run(calendar_db, [_booking("uid-ui", details={"phone": PHONE})], company_id=1)
    assert report.calendar_only == ("uid-ui",) and len(report.review_items) == 1
    [(company_id, call_id, priority, details)] = _rows(
        calendar_db,
        "SELECT company_id, call_id, priority, details FROM guard.review_items"
        " WHERE reason = 'calendar_only_booking'",
    )
    assert (company_id, call_id, priority) == (1, None, 1)
    assert details["booking_uid"] == "uid-ui" and details["problem"] == "call_unknown"
    assert PHONE not in str(details), "ids and times only: the calendar's details stay there"
    assert _rows(calendar_db, "SELECT count(*) FROM appointments") == [(0,)]

    again = _run(calendar_db, [_booking("uid-ui")], company_id=1)
    assert again.calendar_only == ("uid-ui",) and not again.changed


def test_a_booking_cancelled_in_the_calendar_cancels_its_appointment(calendar_db: str) -> None:
    appointment_id = _appointment(calendar_db, "uid-cancel")
    calendar = [_booking("uid-cancel", status=CalendarStatus.CANCELLED)]
    report = _run(calendar_db, calendar)
    assert report.cancelled == (appointment_id,) and report.changed
    [(status, deleted_at, made, outcome)] = _rows(
        calendar_db,
        "SELECT a.status, a.deleted_at, c.appointment_made, c.session_outcome"
        " FROM appointments AS a JOIN calls AS c ON c.id = a.call_id",
    )
    assert (status, deleted_at) == ("cancelled", None), "cancelled, never deleted"
    assert (made, outcome) == (False, "appointment_cancelled"), "the triggers derived the flags"
    again = _run(calendar_db, [_booking("uid-cancel", status="cancelled")])
    assert (again.cancelled, again.in_sync, again.changed) == ((), 1, False)


def test_a_booking_moved_in_the_calendar_moves_its_appointment(calendar_db: str) -> None:
    """Booked on both sides, the calendar at another time (a person moved it in its UI): the
    appointment takes the calendar's start and end, audited; the call stays booked."""
    appointment_id = _appointment(calendar_db, "uid-moved")
    later = SLOT + timedelta(days=1, hours=3)
    calendar = [_booking("uid-moved", starts_at=later, ends_at=later + timedelta(minutes=45))]
    report = _run(calendar_db, calendar)
    assert report.rescheduled == (appointment_id,) and report.changed
    assert report.counts()["rescheduled"] == 1 and report.in_sync == 0
    [(starts_at, ends_at, made)] = _rows(
        calendar_db,
        "SELECT a.starts_at, a.ends_at, c.appointment_made"
        " FROM appointments AS a JOIN calls AS c ON c.id = a.call_id",
    )
    assert (starts_at, ends_at) == (later, later + timedelta(minutes=45))
    assert made is True
    [(before, after)] = _rows(
        calendar_db,
        "SELECT before ->> 'starts_at', after ->> 'starts_at' FROM guard.correction_audit"
        " WHERE entity_type = 'appointment'",
    )
    assert before is not None and after is not None and before != after
    again = _run(calendar_db, calendar)
    assert (again.rescheduled, again.in_sync, again.changed) == ((), 1, False)


def test_an_appointment_absent_from_the_calendar_is_queued_never_deleted(
    calendar_db: str,
) -> None:
    appointment_id = _appointment(calendar_db, "uid-lost")
    report = _run(calendar_db, [])
    assert report.missing == (appointment_id,) and len(report.review_items) == 1
    [(reason, call_id, appointment, priority)] = _rows(
        calendar_db, "SELECT reason, call_id, appointment_id, priority FROM guard.review_items"
    )
    assert (reason, call_id, appointment, priority) == ("missing_in_calendar", 3, appointment_id, 2)
    assert _rows(calendar_db, "SELECT status, deleted_at FROM appointments") == [
        ("scheduled", None)
    ]
    again = _run(calendar_db, [])
    assert again.missing == (appointment_id,) and not again.changed


def test_too_many_missing_appointments_are_refused_and_the_rest_goes_on(calendar_db: str) -> None:
    _appointment(calendar_db, "uid-lost")
    report = _run(calendar_db, [_booking("uid-1", call_id=1)], max_missing=0)
    assert len(report.recorded) == 1, "the calendar's bookings were reconciled"
    assert report.missing_error is not None and "max_items" in report.missing_error
    assert not report.ok and report.missing == ()
    assert _rows(calendar_db, "SELECT count(*) FROM guard.review_items") == [(0,)]


def test_a_second_run_with_the_same_answer_changes_nothing(calendar_db: str) -> None:
    _appointment(calendar_db, "uid-cancel")
    _appointment(calendar_db, "uid-lost")
    calendar = [
        _booking("uid-1", call_id=1),
        _booking("uid-ui"),
        _booking("uid-cancel", status="cancelled"),
        _booking("uid-other-day", call_id=2, starts_at=SLOT + timedelta(days=3)),
    ]
    first = _run(calendar_db, calendar)
    assert first.changed and first.ok
    assert (len(first.recorded), len(first.cancelled), len(first.missing)) == (2, 1, 1)
    before = _state(calendar_db)
    second = _run(calendar_db, calendar)
    assert not second.changed and second.ok
    assert _state(calendar_db) == before, "a second run wrote nothing"
    assert second.counts() == {
        **first.counts(),
        "in_sync": 3,
        "recorded": 0,
        "cancelled": 0,
        "review_items_opened": 0,
    }


def test_another_tenants_call_is_refused_and_the_others_go_on(
    calendar_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Company 2's calendar: each transaction is pinned to company 2, so a booking that names
    company 1's call is refused (counted, logged without personal data); company 2's own booking
    is recorded."""
    calendar = [
        _booking("uid-foreign", call_id=1, details={"phone": PHONE}),
        _booking("uid-own", call_id=6),
    ]
    caplog.set_level(logging.INFO, logger="guard.calendar")
    with psycopg.connect(calendar_db) as conn:
        report = reconcile_calendar(
            conn, lambda _s, _u: calendar, since=SINCE, until=UNTIL, company_id=2
        )
    assert report.failed == ("uid-foreign",) and not report.ok
    assert len(report.recorded) == 1
    assert _rows(calendar_db, "SELECT call_id FROM appointments") == [(6,)]
    assert _rows(calendar_db, "SELECT appointment_made FROM calls WHERE id = 1") == [(False,)]
    assert "uid-foreign" in caplog.text and "permission denied" in caplog.text
    assert "1234567" not in caplog.text


def test_a_failing_calendar_client_stops_before_anything_is_written(
    calendar_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    _appointment(calendar_db, "uid-lost")

    def failing(_since: datetime, _until: datetime) -> list[CalendarBooking]:
        raise ConnectionError(f"calendar unreachable while booking for {PHONE}")

    with psycopg.connect(calendar_db) as conn:
        with pytest.raises(CalendarError, match="ConnectionError: calendar unreachable") as raised:
            reconcile_calendar(conn, failing, since=SINCE, until=UNTIL)
        assert PHONE not in str(raised.value), "the client's message is masked"
        with pytest.raises(CalendarError, match="booking 2: a dict, not a CalendarBooking"):
            reconcile_calendar(
                conn,
                lambda _s, _u: [_booking("uid-1", call_id=1), {"uid": "x"}],  # type: ignore[list-item]
                since=SINCE,
                until=UNTIL,
            )
        with pytest.raises(CalendarError, match="status is neither booked nor cancelled"):
            reconcile_calendar(
                conn,
                lambda _s, _u: [_booking("uid-1", status="accepted")],
                since=SINCE,
                until=UNTIL,
            )
        assert conn.autocommit is False, "the connection's setting is restored"
    assert _rows(calendar_db, "SELECT count(*) FROM guard.review_items") == [(0,)]
    assert _rows(calendar_db, "SELECT count(*) FROM appointments") == [(1,)]


def test_the_window_is_checked_and_passed_to_the_client(calendar_db: str) -> None:
    seen: list[tuple[datetime, datetime]] = []

    def client(since: datetime, until: datetime) -> list[CalendarBooking]:
        seen.append((since, until))
        return []

    with psycopg.connect(calendar_db) as conn:
        reconcile_calendar(conn, client, since=SINCE, until=UNTIL)
        with pytest.raises(Exception, match="since before until"):
            reconcile_calendar(conn, lambda _s, _u: [], since=UNTIL, until=SINCE)
        with pytest.raises(Exception, match="time zone"):
            reconcile_calendar(conn, lambda _s, _u: [], since=datetime(2026, 1, 1))
    assert seen == [(SINCE, UNTIL)]


def test_from_asyncio_it_runs_in_a_thread(calendar_db: str) -> None:
    """No async twin: an asyncio application runs the one reconciliation in a worker thread,
    with a connection of its own, and its event loop keeps running meanwhile."""
    _appointment(calendar_db, "uid-cancel")
    calendar = [
        _booking("uid-1", call_id=1),
        _booking("uid-ui"),
        _booking("uid-cancel", status="cancelled"),
    ]

    def reconcile() -> CalendarReport:
        with psycopg.connect(calendar_db) as conn:
            return reconcile_calendar(conn, lambda _s, _u: calendar, since=SINCE, until=UNTIL)

    async def run() -> tuple[CalendarReport, CalendarReport, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        first = await asyncio.to_thread(reconcile)
        second = await asyncio.to_thread(reconcile)
        ticker.cancel()
        return first, second, ticks

    first, second, ticks = asyncio.run(run())
    assert (len(first.recorded), len(first.cancelled), first.calendar_only) == (1, 1, ("uid-ui",))
    assert first.changed and first.ok
    assert not second.changed and second.in_sync == 2
    assert ticks > 1, "the event loop ran while the reconciliation did"


def test_orphaned_before_needs_a_time_zone(calendar_db: str) -> None:
    with psycopg.connect(calendar_db) as conn, pytest.raises(GuardError, match="time zone"):
        reconcile_calendar(
            conn, lambda _s, _u: [], since=SINCE, until=UNTIL, orphaned_before=datetime(2026, 1, 1)
        )


def test_an_attempt_orphaned_by_a_failover_is_recorded_not_left_in_flight(
    calendar_db: str,
) -> None:
    """An attempt still calling within its timeout is in flight, unless it was journaled before
    `orphaned_before` (after a failover: the last transaction the promoted server replayed):
    then its booking path is gone, and the calendar's booking of its key is recorded now."""
    [(key,)] = _rows(
        calendar_db,
        "SELECT idempotency_key FROM set_config('synchronous_commit', 'on', TRUE),"
        " guard.begin_booking_attempt(4, %s)",
        SERVICE,
    )
    [(orphan_key,)] = _rows(
        calendar_db,
        "SELECT idempotency_key FROM set_config('synchronous_commit', 'on', TRUE),"
        " guard.begin_booking_attempt(5, %s)",
        SERVICE,
    )
    calendar = [_booking("uid-orphan", idempotency_key=orphan_key, call_id=5)]
    assert _run(calendar_db, calendar).in_flight == ("uid-orphan",), "without a cutoff"
    [(cutoff,)] = fetch_all(calendar_db, "SELECT clock_timestamp()")
    report = _run(calendar_db, calendar, orphaned_before=cutoff)
    assert (len(report.recorded), report.in_flight, report.orphaned) == (1, (), (4,))
    assert report.summary().startswith("Changed: 1 recorded, 0 cancelled, 0 rescheduled,")
    assert "1 attempt(s) from before the failover not in the calendar" in report.summary()
    states = dict(_rows(calendar_db, "SELECT idempotency_key, state FROM guard.booking_attempts"))
    assert states == {orphan_key: "booked", key: "calling"}
    again = _run(calendar_db, calendar, orphaned_before=cutoff)
    assert not again.changed and again.summary().startswith("Nothing changed; 1 unchanged")
