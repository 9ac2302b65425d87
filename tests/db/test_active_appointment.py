"""guard.is_active_appointment, the one definition of an active appointment: what it says. That
the planner inlines it, on a new database and on an adopted one whose deleted_at is `timestamp
without time zone`: tests/db/test_repeated_conditions.py, with the other one-definition
conditions."""

from __future__ import annotations

from tests.support.queries import fetch_all


def test_active_means_not_cancelled_and_not_soft_deleted(db_url: str) -> None:
    rows = fetch_all(
        db_url,
        "SELECT s, d IS NULL, guard.is_active_appointment(s, d) FROM"
        " (VALUES ('scheduled', NULL::timestamptz), (NULL, NULL), ('cancelled', NULL),"
        " ('scheduled', now()), ('cancelled', now())) AS v (s, d)",
    )
    assert [r[2] for r in rows] == [True, True, False, False, False]
