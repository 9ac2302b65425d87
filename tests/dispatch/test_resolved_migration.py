"""Migration 0121_resolved_notices_in_one_outbox on a database with resolved notifications in
every state: a notice sent moves as a sent alert_resolved delivery, one claimed moves pending
with its claim, the others are queued by the notices' source as they were claimed before, and
the rollback gives guard.alert_deliveries back as it was."""

from __future__ import annotations

import psycopg

from guard.resources import migrations_dir
from guard.schema.migrate import Migrator

BEFORE, MIGRATION = "0120_i4_rollout_by_company", "0121_resolved_notices_in_one_outbox"

ROWS = (
    "SELECT alert_id, channel, status, delivered_at, resolved_sent_at, claimed_by, claimed_until"
    " FROM guard.alert_deliveries ORDER BY 1, 2"
)
MOVED = (
    "SELECT subject, channel, status, sent_at IS NOT NULL, claimed_by FROM guard.deliveries"
    " WHERE kind = 'alert_resolved' ORDER BY 1, 2"
)


def test_resolved_notices_move_and_come_back(empty_db_url: str) -> None:
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply(to=BEFORE)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id,"
            " severity, message, status, resolved_at, resolution) OVERRIDING SYSTEM VALUE"
            " SELECT n, 'm:' || n, 'c', 'call', n, 'high', 'x', 'resolved',"
            " now() - interval '1 hour', 'fixed' FROM generate_series(1, 5) AS n"
        )
        conn.execute(
            "INSERT INTO guard.alert_deliveries (alert_id, channel, status, delivered_at,"
            " resolved_sent_at, claimed_by, claimed_until) VALUES"
            # told
            " (1, 'email', 'delivered', now() - interval '2 hours', now() - interval '5 min',"
            " NULL, NULL),"
            # resolved before it was delivered: settled, nothing told
            " (2, 'email', 'delivered', now() - interval '30 min', now() - interval '30 min',"
            " NULL, NULL),"
            # being told now
            " (3, 'email', 'delivered', now() - interval '2 hours', NULL, 'w1',"
            " now() + interval '1 minute'),"
            # not told yet (or a channel that did not opt in)
            " (4, 'email', 'delivered', now() - interval '2 hours', NULL, NULL, NULL),"
            " (5, 'email', 'pending', NULL, NULL, NULL, NULL)"
        )
        before = conn.execute(ROWS).fetchall()

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.apply(to=MIGRATION) == [MIGRATION]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(MOVED).fetchall() == [
            (1, "email", "sent", True, None),
            (3, "email", "pending", False, "w1"),
        ]
        looked = "SELECT alert_id FROM guard.alert_deliveries WHERE resolution_queued_at IS NULL"
        assert conn.execute(looked + " ORDER BY 1").fetchall() == [(4,), (5,)]

    # The source is a definition from sql/, applied with the last pending migration.
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply()
    with (
        psycopg.connect(empty_db_url, autocommit=True) as conn,
        conn.transaction(force_rollback=True),
    ):
        assert conn.execute("SELECT guard.enqueue_resolved_notices(ARRAY['email'])").fetchall() == [
            (1,)
        ]
        claim = (
            "SELECT subject FROM guard.claim_deliveries('alert_resolved', 'email', 'w2', 10, 60)"
        )
        assert conn.execute(claim).fetchall() == [(4,)]

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.rollback(to=BEFORE)[-1] == MIGRATION
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(ROWS).fetchall() == before
        assert conn.execute(
            "SELECT count(*) FROM guard.deliveries WHERE kind = 'alert_resolved'"
        ).fetchall() == [(0,)]
