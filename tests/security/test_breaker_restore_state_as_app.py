"""guard.breaker_restore_state as the application role, which calls it when a circuit is missing
from Redis: with several circuits recorded, each key gets its own state, generation and
opened_at back, and a key PostgreSQL never recorded gets no row (the circuit is new)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from tests.security.conftest import LOGINS

OPENED = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_each_circuit_restores_its_own_state(db_url: str, login_roles: dict[str, str]) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.breaker_state (key, state, generation, opened_at, changed_at)"
            " VALUES ('calendar', 'forced_open', 7, %s, %s),"
            " ('retell', 'closed', 3, NULL, %s),"
            " ('sms', 'disabled', 12, NULL, %s)",
            (OPENED, OPENED, OPENED, OPENED),
        )
        # the event log knows a later generation of retell than its state row
        admin.execute(
            "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
            " host, pid, occurred_at) VALUES ('retell', 5, 'open', 'closed', 'test', 'h', 1,"
            " %s)",
            (OPENED,),
        )
    with psycopg.connect(db_url, user=LOGINS["application"]) as app:
        restored = {
            key: app.execute(
                "SELECT state, generation, opened_at FROM guard.breaker_restore_state(%s)",
                (key,),
            ).fetchall()
            for key in ("calendar", "retell", "sms", "never-seen")
        }
    assert restored == {
        "calendar": [("forced_open", 7, OPENED)],
        "retell": [("closed", 5, None)],
        "sms": [("disabled", 12, None)],
        "never-seen": [],
    }
