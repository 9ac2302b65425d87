"""A deleted company takes its tenant state with it: its bindings go, its open alert and review
item are closed, and a company created later with the same id is invisible to the old login,
whatever SQL that login runs."""

from __future__ import annotations

import psycopg

from tests.security.conftest import connect_as
from tests.support.queries import fetch_one

GONE = 3


def test_a_deleted_companys_login_sees_nothing_of_a_new_company_with_its_id(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (%s, 'Old Ltd')", (GONE,))
        admin.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message) VALUES ('gone:company:3', 'gone', %s, 'company', %s, 'high',"
            " 'x')",
            (GONE, GONE),
        )
        item = admin.execute(
            "SELECT guard.enqueue_review(%s, NULL, 77, 'other')", (GONE,)
        ).fetchone()
    old = connect_as(seeded_url, login_roles["reporting"], tenant=GONE)
    with old:
        assert old.execute("SELECT name FROM companies").fetchall() == [("Old Ltd",)]
        with connect_as(seeded_url, login_roles["application"]) as app:
            assert app.execute("DELETE FROM companies WHERE id = %s", (GONE,)).rowcount == 1
            app.execute("INSERT INTO companies (id, name) VALUES (%s, 'New Ltd')", (GONE,))
            app.execute(
                "INSERT INTO calls (id, company_id, retell_call_id, booking_failed,"
                " session_outcome) VALUES (50, %s, 'new1', TRUE, 'creation_failed')",
                (GONE,),
            )
        # the same open session and a new one: the old login is bound to nothing any more
        for login in (old, connect_as(seeded_url, login_roles["reporting"])):
            for query in (
                "SELECT id FROM companies",
                "SELECT id FROM calls",
                "SELECT id FROM guard.calls_report",
                "SELECT id FROM guard.alerts",
                "SELECT id FROM guard.review_items",
                "SELECT company_id FROM guard.tenant_bindings",
                "SELECT entity_id FROM guard.check_recent_booking_failure",
            ):
                assert login.execute(query).fetchall() == [], query
    bindings = fetch_one(
        seeded_url, "SELECT count(*) FROM guard.tenant_bindings WHERE company_id = %s", (GONE,)
    )
    alert = fetch_one(
        seeded_url,
        "SELECT status, resolution, details ->> 'resolved_because' FROM guard.alerts"
        " WHERE fingerprint = 'gone:company:3'",
    )
    review = fetch_one(
        seeded_url,
        "SELECT status, note, closed_at IS NOT NULL FROM guard.review_items WHERE id = %s",
        item or (),
    )
    assert bindings == (0,)
    assert alert == ("resolved", "superseded", "company deleted")
    assert review == ("dismissed", "the company was deleted", True)


def test_deleting_a_company_leaves_other_companies_alone(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (%s, 'Old Ltd')", (GONE,))
        before = admin.execute(
            "SELECT (SELECT count(*) FROM guard.tenant_bindings),"
            " (SELECT count(*) FROM guard.alerts WHERE status = 'open'),"
            " (SELECT count(*) FROM guard.review_items WHERE status = 'open')"
        ).fetchone()
    with connect_as(seeded_url, login_roles["application"]) as app:
        app.execute("DELETE FROM companies WHERE id = %s", (GONE,))
    after = fetch_one(
        seeded_url,
        "SELECT (SELECT count(*) FROM guard.tenant_bindings),"
        " (SELECT count(*) FROM guard.alerts WHERE status = 'open'),"
        " (SELECT count(*) FROM guard.review_items WHERE status = 'open')",
    )
    assert after == before
