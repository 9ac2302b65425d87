"""Log in as each kind of role and check what it may and may not do (tests/security/conftest.py
creates the login roles and two tenants' data)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.security.conftest import COMPANY_A, COMPANY_B, assert_refused, connect_as
from tests.support.queries import fetch_all


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str, *params: object) -> object:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


# --- application -----------------------------------------------------------------------------


def test_application_writes_calls_and_appointments_and_the_triggers_work(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with connect_as(seeded_url, login_roles["application"]) as app:
        app.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, from_number, direction)"
            " VALUES (10, 1, 'app1', '+49 30 5555555', ' INBOUND ')"
        )
        app.execute("INSERT INTO customers (id, company_id, name) VALUES (10, 1, 'Kim')")
        app.execute("UPDATE calls SET customer_id = 10 WHERE id = 10")
        app.execute(
            "INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id)"
            " VALUES (10, 1, 10, 'uid-10')"
        )
        row = app.execute(
            "SELECT direction, customer_link_status, customer_link_method, appointment_made,"
            " session_outcome FROM calls WHERE id = 10"
        ).fetchone()
        assert row == ("inbound", "linked", "phone_match", True, "appointment_booked")
        validated = app.execute(
            "SELECT ok FROM guard.validate_booking(10, 10, 'uid-10')"
        ).fetchone()
        assert validated == (True,)
        app.execute("UPDATE appointments SET status = 'cancelled' WHERE id = 10")
        assert _one(app, "SELECT appointment_made FROM calls WHERE id = 10") is False
        app.execute("DELETE FROM appointments WHERE id = 10")
        app.execute("DELETE FROM calls WHERE id = 10")
        assert _one(app, "SELECT count(*) FROM calls WHERE id = 10") == 0


def test_application_correcting_write_is_audited_with_the_writer(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with connect_as(seeded_url, login_roles["application"]) as app:
        # call 2 has no appointment: claiming a booking contradicts the appointments
        app.execute("UPDATE calls SET appointment_made = TRUE WHERE id = 2")
        assert _one(app, "SELECT appointment_made FROM calls WHERE id = 2") is False
    audit = fetch_all(
        seeded_url,
        "SELECT entity_id, actor FROM guard.correction_audit WHERE reason <> 'seed'",
    )
    assert audit == [(2, login_roles["application"])]


def test_application_cannot_touch_guard_tables_directly(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with connect_as(seeded_url, login_roles["application"], select=COMPANY_A) as app:
        assert_refused(
            app,
            "SELECT * FROM guard.correction_audit",
            "INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id,"
            " reason) VALUES ('x', 1, 'call', 1, 'forged')",
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(),"
            " resolution = 'manual'",
            "DELETE FROM guard.alerts",
            "SELECT * FROM guard.alerts",
            "UPDATE guard.settings SET value = '0' WHERE key = 'grace_period_seconds'",
            "UPDATE guard.review_items SET status = 'dismissed'",
            "SELECT guard.reconcile()",
            "SELECT guard.enqueue_review(1, 1, NULL, 'other')",
            "SELECT guard.run_detection('-infinity', NULL)",
            "SELECT guard.apply_grants()",
        )


def test_application_booking_functions_refuse_another_tenants_call(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with connect_as(seeded_url, login_roles["application"], select=COMPANY_A) as app:
        assert app.execute("SELECT count(*) FROM guard.check_call(1)").fetchone()
        app.execute("SELECT guard.rollback_booking(2, 'other', '{}')")
        assert_refused(
            app,
            "SELECT guard.rollback_booking(4, 'other', '{}')",
            "SELECT * FROM guard.validate_booking(3, 2, 'uid-b1')",
            "SELECT * FROM guard.check_call(3)",
            "SELECT guard.record_validation(2, 3, 2, TRUE, NULL, 1.0)",
            # a trigger's correction of another tenant's call is refused too (at commit: the
            # connection is in autocommit, so the statement's commit is this statement)
            "UPDATE calls SET appointment_made = TRUE WHERE id = 4",
        )
    rolled = fetch_all(
        seeded_url,
        "SELECT call_id FROM guard.review_items WHERE reason = 'other'",
    )
    assert rolled == [(2,)]


# --- reporting -------------------------------------------------------------------------------


def test_reporting_reads_masked_numbers_but_not_raw_ones(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_A) as bi:
        rows = bi.execute(
            "SELECT id, from_number_masked, to_number_masked FROM guard.calls_report ORDER BY id"
        ).fetchall()
        assert rows == [
            (1, "+49 30 ****567", "+49 40 ****321"),
            (2, "+49 30 ****222", "+49 40 ****321"),
        ]
        assert _one(bi, "SELECT count(*) FROM calls") == 2
        assert_refused(
            bi,
            "SELECT from_number FROM calls",
            "SELECT to_number FROM calls",
            "SELECT * FROM calls",
        )


def test_reporting_cannot_write_anything(seeded_url: str, login_roles: dict[str, str]) -> None:
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_A) as bi:
        assert_refused(
            bi,
            "INSERT INTO calls (company_id) VALUES (1)",
            "UPDATE calls SET status = 'x' WHERE id = 1",
            "DELETE FROM appointments",
            "UPDATE guard.alerts SET message = 'x'",
            "DELETE FROM guard.alerts",
            "UPDATE guard.review_items SET note = 'x'",
            "INSERT INTO guard.daily_reports (report_date, company_id, total_calls,"
            " inconsistent_calls, inconsistency_rate_pct, auto_corrected, manual_reviews,"
            " open_review_items) VALUES (current_date - 1, 1, 0, 0, 0, 0, 0, 0)",
            "UPDATE guard.settings SET value = '0' WHERE key = 'grace_period_seconds'",
            "SELECT guard.review_claim('bi', 1)",
            "SELECT guard.rollback_booking(2, 'other', '{}')",
            "SELECT * FROM guard.validate_booking(1, 1, 'uid-a1')",
            "SELECT * FROM guard.check_call(1)",
            "SELECT * FROM guard.detect()",
        )


def test_reporting_reads_every_bi_view(seeded_url: str, login_roles: dict[str, str]) -> None:
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_A) as bi:
        views = bi.execute(
            "SELECT c.oid::regclass::text FROM pg_class AS c"
            " WHERE c.relnamespace = 'guard'::regnamespace AND c.relkind = 'v'"
        ).fetchall()
        assert len(views) >= 12
        for (view,) in views:
            bi.execute(f"SELECT * FROM {view}").fetchall()


# --- reviewer --------------------------------------------------------------------------------


def test_reviewer_claims_and_closes_only_its_tenants_items(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        other_item = _one(admin, "SELECT id FROM guard.review_items WHERE company_id = 2")
    with connect_as(seeded_url, login_roles["reviewer"], tenant=COMPANY_A) as reviewer:
        claimed = reviewer.execute(
            "SELECT company_id, call_id FROM guard.review_claim('ann', 10)"
        ).fetchall()
        assert claimed == [(COMPANY_A, 2)]
        item = _one(reviewer, "SELECT id FROM guard.review_items WHERE call_id = 2")
        closed = reviewer.execute(
            "SELECT status, closed_by, closed_by_role, claimed_by_role"
            " FROM guard.review_close(%s, 'ann', 'resolved', 'fixed')",
            (item,),
        ).fetchone()
        login = login_roles["reviewer"]
        assert closed == ("resolved", "ann", login, login)  # the label, and who really did it
        with pytest.raises(errors.NoDataFound):
            reviewer.execute(
                "SELECT guard.review_close(%s, 'ann', 'dismissed', 'not mine')", (other_item,)
            )
        assert (
            reviewer.execute(
                "UPDATE guard.review_items SET note = 'x' WHERE id = %s", (other_item,)
            ).rowcount
            == 0
        )
        assert_refused(
            reviewer,
            "UPDATE guard.review_items SET company_id = 2",
            "DELETE FROM guard.review_items",
            "INSERT INTO guard.review_items (company_id, reason) VALUES (1, 'other')",
            "UPDATE guard.alerts SET message = 'x'",
            "SELECT from_number FROM calls",
            "UPDATE calls SET status = 'x'",
        )
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        status = _one(admin, "SELECT status FROM guard.review_items WHERE id = %s", other_item)
    assert status == "open"


def test_owner_member_maintains_every_tenant(seeded_url: str, login_roles: dict[str, str]) -> None:
    """Jobs run as a member of the owner role: the forced policies let it see every tenant."""
    with connect_as(seeded_url, login_roles["owner"]) as jobs:
        companies = jobs.execute(
            "SELECT DISTINCT company_id FROM guard.alerts ORDER BY 1"
        ).fetchall()
        assert (COMPANY_A,) in companies and (COMPANY_B,) in companies
        jobs.execute("SELECT * FROM guard.detect()").fetchall()
        jobs.execute("SELECT * FROM guard.reconcile()").fetchall()
        jobs.execute(
            "SELECT * FROM guard.daily_report((now() AT TIME ZONE 'UTC')::date - 1)"
        ).fetchall()
