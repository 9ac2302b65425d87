"""The Laravel application books through the SQL booking path (docs/booking-path.md) and runs
its everyday Eloquent flows on an adopted schema: no hand-written grant, `verify` clean after, and
a PHP process and a Python process booking the same call at once make one booking (the in-flight
wait is PostgreSQL's, not either client's)."""

from __future__ import annotations

import time

import psycopg

from guard.booking import BookingStatus, CalendarBooking, book_appointment
from guard.breaker import BreakerRegistry
from guard.schema.verify import verify
from tests.laravel.conftest import LaravelApp, application_login


def _attempts(url: str, call: int) -> list[tuple[str, str | None]]:
    with psycopg.connect(url) as admin:
        return [
            (state, reason)
            for state, reason in admin.execute(
                "SELECT state, failure_reason FROM guard.booking_attempts WHERE call_id = %s"
                " ORDER BY id",
                (call,),
            ).fetchall()
        ]


def test_a_booking_from_php_is_recorded_validated_and_verify_stays_clean(
    laravel: LaravelApp,
) -> None:
    seeded = laravel.run("seed", calls=1)
    assert "error" not in seeded, seeded  # the inserts need the sequences' USAGE grant
    [call] = seeded["calls"]
    booked = laravel.run("book", call=call, service=seeded["service"], uid="cal-1")
    assert booked["outcome"] == "booked", booked
    assert booked["call"] == {
        "appointment_made": True,
        "session_outcome": "appointment_booked",
        "booking_id": "cal-1",
        "active_appointments": 1,
    }
    assert _attempts(laravel.url, call) == [("booked", None)]
    again = laravel.run("book", call=call, service=seeded["service"], uid="cal-2")
    assert again["outcome"] == "already_booked", again
    assert [(d.kind, d.subject) for d in verify(laravel.url)] == []


def test_a_calendar_failure_in_php_is_rolled_back_and_queued_for_review(
    laravel: LaravelApp,
) -> None:
    seeded = laravel.run("seed", calls=1)
    [call] = seeded["calls"]
    failed = laravel.run("book", call=call, service=seeded["service"], calendar_fails=True)
    assert failed["outcome"] == "failed" and failed["review_item_id"] is not None, failed
    assert failed["call"]["appointment_made"] is False
    assert failed["call"]["active_appointments"] == 0
    assert _attempts(laravel.url, call) == [("failed", "calendar_booking_failure")]
    with psycopg.connect(laravel.url) as admin:
        item = admin.execute(
            "SELECT reason, call_id FROM guard.review_items WHERE id = %s",
            (failed["review_item_id"],),
        ).fetchone()
    assert item == ("calendar_booking_failure", call)


def test_php_and_python_booking_one_call_at_once_make_one_booking(laravel: LaravelApp) -> None:
    seeded = laravel.run("seed", calls=1)
    [call] = seeded["calls"]
    php = laravel.process(
        "book", call=call, service=seeded["service"], uid="php-1", calendar_seconds=2.0
    )
    deadline = time.monotonic() + 30
    while _attempts(laravel.url, call) != [("calling", None)]:
        assert time.monotonic() < deadline, "the PHP attempt never started"
        time.sleep(0.05)
    asked: list[str] = []

    def calendar(key: str) -> CalendarBooking:
        asked.append(key)
        return CalendarBooking(uid="python-1")

    with psycopg.connect(laravel.url, user=laravel.login) as app:
        outcome = book_appointment(
            app,
            call_id=call,
            service_id=seeded["service"],
            book=calendar,
            breakers=BreakerRegistry(in_memory=True),
            wait_seconds=30,
        )
    php_out, _ = php.communicate(timeout=60)
    assert '"outcome":"booked"' in php_out, php_out
    assert outcome.status is BookingStatus.ALREADY_BOOKED, outcome
    assert outcome.booking_uid == "php-1"
    assert asked == [], "Python waited in PostgreSQL and never asked the calendar"
    assert _attempts(laravel.url, call) == [("booked", None)]


def test_the_everyday_eloquent_flows_keep_the_flags_true(laravel: LaravelApp) -> None:
    seeded = laravel.run("seed", calls=1)
    [call] = seeded["calls"]
    assert laravel.run("book", call=call, service=seeded["service"], uid="cal-9")["outcome"] == (
        "booked"
    )
    flows = laravel.run("soft-delete", call=call)
    assert flows["deleted"]["appointment_made"] is False, flows
    assert flows["restored"]["appointment_made"] is True, flows
    cancelled = laravel.run("cancel", call=call)
    assert cancelled["call"]["appointment_made"] is False, cancelled
    assert cancelled["call"]["active_appointments"] == 0
    assert [(d.kind, d.subject) for d in verify(laravel.url)] == []


def test_a_login_bound_to_one_company_sees_and_writes_only_its_rows_through_eloquent(
    laravel: LaravelApp,
) -> None:
    first = laravel.run("seed", company="Praxis Eins", calls=2)
    second = laravel.run("seed", company="Praxis Zwei", calls=3)
    bound = "laravel_bound"
    application_login(laravel.url, bound, bound=True)
    with psycopg.connect(laravel.url, autocommit=True) as admin:
        admin.execute("SELECT guard.tenant_grant(%s, %s)", (bound, first["company"]))
    as_bound = laravel.as_login(bound)
    assert as_bound.run("count-calls") == {"calls": 2, "customers": 1}
    foreign = second["calls"][0]
    assert as_bound.run("update-call", call=foreign, set={"status": "hijacked"}) == {"updated": 0}
    own = first["calls"][0]
    assert as_bound.run("update-call", call=own, set={"status": "ended"}) == {"updated": 1}
    assert laravel.run("count-calls") == {"calls": 5, "customers": 2}, "the unbound login"


def test_an_application_in_berlin_is_read_in_berlin_from_every_session(
    laravel: LaravelApp,
) -> None:
    """app.timezone = Europe/Berlin: Eloquent stamps its wall clock. Declared once (setting
    app_time_zone), the phantom bookings it leaves are found from sessions in any zone; with
    Laravel's own tables (timestamp without time zone) a session in New York found none, and a
    UTC one saw them an hour in the future (issue 72, row 3)."""
    with psycopg.connect(laravel.url, autocommit=True) as admin:
        admin.execute(
            "UPDATE guard.settings SET value = to_jsonb('Europe/Berlin'::text)"
            " WHERE key = 'app_time_zone'"
        )
        admin.execute("UPDATE guard.settings SET value = '1' WHERE key = 'grace_period_seconds'")
    berlin = laravel.in_zone("Europe/Berlin")
    seeded = berlin.run("seed", calls=3)
    assert "error" not in seeded, seeded
    for call in seeded["calls"]:
        claimed = berlin.run("claim-booking", call=call)
        assert claimed["call"]["session_outcome"] == "appointment_booked", claimed
    time.sleep(2)  # past the grace period
    for zone in ("UTC", "America/New_York", "Europe/Berlin"):
        with psycopg.connect(laravel.url, autocommit=True) as session:
            session.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
            found = session.execute(
                "SELECT entity_id FROM guard.check_booked_without_appointment ORDER BY 1"
            ).fetchall()
        assert [int(call) for (call,) in found] == seeded["calls"], zone


def test_bookings_whose_process_was_killed_are_settled_by_the_php_reconciliation(
    laravel: LaravelApp,
) -> None:
    """Two PHP booking processes are killed (SIGKILL) while the calendar holds their calls; the
    calendar booked one of them. The application's reconciliation service (guard
    .unsettled_booking_attempts, then record_booking or fail_booking_attempt) records that
    booking once and rolls the other call back into review: nothing lost, nothing doubled."""
    seeded = laravel.run("seed", calls=2)
    booked_call, lost_call = seeded["calls"]
    for call in seeded["calls"]:
        process = laravel.process("book", call=call, service=seeded["service"], calendar_seconds=60)
        deadline = time.monotonic() + 30
        while _attempts(laravel.url, call) != [("calling", None)]:
            assert time.monotonic() < deadline, "the PHP attempt never started"
            time.sleep(0.05)
        process.kill()
        process.communicate(timeout=30)
    with psycopg.connect(laravel.url, autocommit=True) as admin:
        [(booked_key,)] = admin.execute(
            "SELECT idempotency_key FROM guard.booking_attempts WHERE call_id = %s", (booked_call,)
        ).fetchall()
        # not yet past booking_attempt_timeout_seconds: still someone's booking in flight
        assert laravel.run("recover") == {"recovered": 0, "failed": 0, "unsettled": 0}
        admin.execute(
            "UPDATE guard.settings SET value = '1' WHERE key = 'booking_attempt_timeout_seconds'"
        )
    time.sleep(1.5)

    settled = laravel.run("recover", calendar={booked_key: "cal-recovered"})

    assert settled == {"recovered": 1, "failed": 1, "unsettled": 0}, settled
    assert [state for state, _ in _attempts(laravel.url, booked_call)] == ["recovered"]
    assert [state for state, _ in _attempts(laravel.url, lost_call)] == ["failed"]
    booked = laravel.run("count-active", call=booked_call)
    assert booked == {"active": 1, "booking_id": "cal-recovered"}, booked
    with psycopg.connect(laravel.url) as admin:
        lost = admin.execute(
            "SELECT c.booking_failed, r.reason FROM calls AS c"
            " JOIN guard.review_items AS r ON r.call_id = c.id WHERE c.id = %s",
            (lost_call,),
        ).fetchall()
    assert lost == [(True, "calendar_booking_failure")]
    # run again: nothing left to settle, nothing recorded twice
    assert laravel.run("recover", calendar={booked_key: "cal-recovered"}) == {
        "recovered": 0,
        "failed": 0,
        "unsettled": 0,
    }
