"""The booking journal under the real roles: the application login books and recovers through
the journal functions alone, a tenant-bound session cannot touch another tenant's attempts, and
reporting reads only its tenant's rows (tests/security/conftest.py seeds two tenants)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from guard.booking import BookingStatus, CalendarBooking, book_appointment, recover_attempts
from guard.breaker import BreakerRegistry
from tests.security.conftest import COMPANY_A, COMPANY_B, connect_as
from tests.support.queries import execute, fetch_one


def _seed_service(url: str) -> None:
    execute(
        url,
        "INSERT INTO services (id, company_id, name) VALUES (5, 1, 'S')",
        "INSERT INTO calls (id, company_id, retell_call_id) VALUES (5, 1, 'a5')",
        "SELECT setval(pg_get_serial_sequence('appointments', 'id'), 100)",
    )


def test_the_application_login_books_and_recovers_through_the_journal(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    _seed_service(seeded_url)
    breakers = BreakerRegistry(in_memory=True)
    with connect_as(seeded_url, login_roles["application"]) as app:
        outcome = book_appointment(
            app,
            call_id=5,
            service_id=5,
            book=lambda key: CalendarBooking(uid=f"uid-{key[:4]}"),
            breakers=breakers,
        )
        assert outcome.status is BookingStatus.BOOKED
        report = recover_attempts(app, lambda key: None)
        assert report.examined == 0
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute("SELECT count(*) FROM guard.booking_attempts")
    row = fetch_one(seeded_url, "SELECT state, started_by, booking_uid FROM guard.booking_attempts")
    assert row == ("booked", login_roles["application"], outcome.booking_uid)


def test_a_tenant_session_cannot_touch_another_tenants_attempts(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        (key,) = admin.execute(
            "SELECT idempotency_key FROM guard.begin_booking_attempt(4, 9)"
        ).fetchone() or (None,)
        admin.execute("UPDATE guard.booking_attempts SET created_at = now() - interval '1 hour'")
    with connect_as(seeded_url, login_roles["application"], tenant=COMPANY_A) as app:
        for statement, params in (
            ("SELECT * FROM guard.begin_booking_attempt(4, 9)", ()),
            ("SELECT guard.fail_booking_attempt(%s, 'other', '{}')", (key,)),
            ("SELECT guard.complete_booking_attempt(%s, 2, 'uid-b1')", (key,)),
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                app.execute(statement, params or None)
        assert recover_attempts(app, lambda key: None).examined == 0, "B's attempt is unseen"
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_B) as bi:
        seen_by_b = bi.execute(
            "SELECT count(*) FROM guard.check_booking_outcome_unknown"
        ).fetchone()
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_A) as bi:
        seen_by_a = bi.execute(
            "SELECT count(*) FROM guard.check_booking_outcome_unknown"
        ).fetchone()
    state = fetch_one(seeded_url, "SELECT state FROM guard.booking_attempts")
    assert (seen_by_b, seen_by_a) == ((1,), (0,)), "reporting sees only its tenant's attempts"
    assert state == ("calling",), "nothing was written by the refused calls"
