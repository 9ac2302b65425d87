"""Migration 0122_alert_deliveries_in_one_outbox on a database with alert deliveries in every
state: each moves into guard.deliveries as kind alert with its data (a pending one with its
attempts, next attempt and claim; a delivered one with its time; skipped and failed ones as they
were), the notices' 'sent' becomes 'delivered', and the rollback gives both tables back as they
were."""

from __future__ import annotations

import psycopg

from guard.resources import migrations_dir
from guard.schema.migrate import Migrator

BEFORE, MIGRATION = "0121_resolved_notices_in_one_outbox", "0122_alert_deliveries_in_one_outbox"

ALERT_ROWS = (
    "SELECT alert_id, channel, status, attempts, next_attempt_at, delivered_at, last_error,"
    " claimed_by, claimed_until, created_at, resolution_queued_at"
    " FROM guard.alert_deliveries ORDER BY 1, 2"
)
NOTICE_ROWS = "SELECT kind, subject, channel, status, sent_at FROM guard.deliveries ORDER BY 1, 2"
MOVED = (
    "SELECT subject, channel, status, attempts, next_attempt_at, delivered_at, last_error,"
    " claimed_by, claimed_until, created_at, resolution_queued_at"
    " FROM guard.deliveries WHERE kind = 'alert' ORDER BY 1, 2"
)


def test_alert_deliveries_move_and_come_back(empty_db_url: str) -> None:
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply(to=BEFORE)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id,"
            " severity, message) OVERRIDING SYSTEM VALUE"
            " SELECT n, 'm:' || n, 'c', 'call', n, 'high', 'x' FROM generate_series(1, 5) AS n"
        )
        conn.execute(
            "INSERT INTO guard.alert_deliveries (alert_id, channel, status, attempts,"
            " next_attempt_at, delivered_at, last_error, claimed_by, claimed_until,"
            " resolution_queued_at) VALUES"
            # waiting for its retry
            " (1, 'email', 'pending', 2, now() + interval '1 minute', NULL, 'HTTP 500', NULL,"
            " NULL, NULL),"
            # claimed now
            " (2, 'email', 'pending', 0, now(), NULL, NULL, 'w1', now() + interval '1 minute',"
            " NULL),"
            # delivered, its resolution looked at
            " (3, 'email', 'delivered', 1, now(), now() - interval '1 hour', NULL, NULL, NULL,"
            " now() - interval '5 min'),"
            " (4, 'email', 'skipped', 0, now(), NULL, NULL, NULL, NULL, NULL),"
            " (5, 'email', 'failed', 10, now(), NULL, 'gave up', NULL, NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO guard.deliveries (kind, subject, channel, status, sent_at) VALUES"
            " ('report', 20261125, 'email', 'sent', now()),"
            " ('review_notice', 7, 'email', 'pending', NULL)"
        )
        alerts = conn.execute(ALERT_ROWS).fetchall()
        notices = conn.execute(NOTICE_ROWS).fetchall()

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.apply(to=MIGRATION) == [MIGRATION]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(MOVED).fetchall() == alerts
        assert conn.execute(
            "SELECT kind, status, delivered_at IS NOT NULL, attempts FROM guard.deliveries"
            " WHERE kind <> 'alert' ORDER BY 1"
        ).fetchall() == [("report", "delivered", True, 0), ("review_notice", "pending", False, 0)]
        assert conn.execute("SELECT to_regclass('guard.alert_deliveries')").fetchone() == (None,)

    # The claim is a definition from sql/, applied with the last pending migration.
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply()
    with (
        psycopg.connect(empty_db_url, autocommit=True) as conn,
        conn.transaction(force_rollback=True),
    ):
        claim = (
            "SELECT subject, attempts FROM guard.claim_deliveries('alert', 'email', 'w2', 10, 60)"
        )
        assert conn.execute(claim).fetchall() == [], "one waits for its retry, one is claimed"
        conn.execute("UPDATE guard.deliveries SET next_attempt_at = now() - interval '1 s'")
        assert conn.execute(claim).fetchall() == [(1, 2)]

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.rollback(to=BEFORE)[-1] == MIGRATION
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(ALERT_ROWS).fetchall() == alerts
        assert conn.execute(NOTICE_ROWS).fetchall() == notices
