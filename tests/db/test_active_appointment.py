"""guard.is_active_appointment, the one definition of an active appointment: what it says. That
the planner inlines it, on a new database and on an adopted one whose deleted_at is `timestamp
without time zone`: tests/db/test_repeated_conditions.py, with the other one-definition
conditions."""

from __future__ import annotations

import psycopg


def test_active_means_not_cancelled_and_not_soft_deleted(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s, d IS NULL, guard.is_active_appointment(s, d) FROM"
            " (VALUES ('scheduled', NULL::timestamptz), (NULL, NULL), ('cancelled', NULL),"
            " ('scheduled', now()), ('cancelled', now())) AS v (s, d)"
        ).fetchall()
    assert [r[2] for r in rows] == [True, True, False, False, False]
