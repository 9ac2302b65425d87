"""`guard db validate` corrects a legacy phantom booking's flags without restarting its grace
period: the phantom stays visible to detection (it used to vanish from
guard.check_booked_without_appointment for five minutes, then come back)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from guard.schema.validate import validate
from tests.support.queries import fetch_all

PHANTOM = 501
BOOKED = 502


def _legacy_rows(url: str) -> None:
    """Rows the old application wrote before Booking Guard: triggers do not fire for them."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome,"
            " appointment_made, appointment_link_status, customer_link_status,"
            " created_at, updated_at)"
            " VALUES (%s, 1, 'phantom', 'inbound', 'appointment_booked', TRUE, 'linked',"
            "         'unlinked', now() - interval '2 hours', now() - interval '1 hour'),"
            "        (%s, 1, 'booked', 'inbound', 'appointment_booked', FALSE, NULL,"
            "         'unlinked', now() - interval '2 hours', now() - interval '1 hour')",
            (PHANTOM, BOOKED),
        )
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, created_at)"
            " VALUES (1, 1, %s, 'uid-1', now() - interval '1 hour')",
            (BOOKED,),
        )


def _state(url: str) -> tuple[list[int], dict[int, tuple[bool, datetime]]]:
    visible = fetch_all(
        url, "SELECT entity_id FROM guard.check_booked_without_appointment ORDER BY 1"
    )
    rows = fetch_all(
        url,
        "SELECT id, appointment_made, updated_at FROM calls WHERE id IN (%s, %s)",
        (PHANTOM, BOOKED),
    )
    return [int(v) for (v,) in visible], {int(i): (bool(m), u) for i, m, u in rows}


def test_validate_keeps_the_grace_period_of_the_phantoms_it_corrects(db_url: str) -> None:
    _legacy_rows(db_url)
    visible, before = _state(db_url)
    assert visible == [PHANTOM], "the legacy phantom is past its grace period"

    report = validate(db_url)

    assert report.corrected["I3_appointment_flags"] == 2, report.as_dict()
    visible, after = _state(db_url)
    assert after[PHANTOM][0] is False, "its flags were derived from the appointments"
    assert after[PHANTOM][1] == before[PHANTOM][1], "its updated_at (the claim's age) is kept"
    assert visible == [PHANTOM], "the phantom is still reported, not hidden for a grace period"
    # A correction that books the call is a real change of state: updated_at moves.
    assert after[BOOKED][0] is True
    assert after[BOOKED][1] > before[BOOKED][1]
