"""Migration 0119_one_outbox on a database with deliveries of each kind in every state: each
row moves into guard.deliveries with its status, times, claim and error, none lost and none
twice, the dispatcher's claim hands out exactly the pending ones, and the rollback gives the old
tables back as they were."""

from __future__ import annotations

from typing import Any

import psycopg

from guard.resources import migrations_dir
from guard.schema.migrate import Migrator

BEFORE, MIGRATION = "0118_detection_within_a_minute", "0119_one_outbox"

NOTICES = (
    "SELECT review_item_id, channel, status, created_at, sent_at, claimed_by, claimed_until,"
    " last_error FROM guard.review_notices ORDER BY 1, 2"
)
REPORTS = (
    "SELECT report_date, channel, status, created_at, sent_at, claimed_by, claimed_until,"
    " last_error FROM guard.report_deliveries ORDER BY 1, 2"
)
MOVED = (
    "SELECT subject, channel, status, created_at, sent_at, claimed_by, claimed_until, last_error"
    " FROM guard.deliveries WHERE kind = %s ORDER BY 1, 2"
)


def _seed(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO guard.review_notices (review_item_id, channel, status, sent_at, claimed_by,"
        " claimed_until, last_error, created_at) VALUES"
        " (1, 'webhook', 'pending', NULL, NULL, NULL, NULL, now() - interval '1 hour'),"
        " (1, 'email', 'sent', now(), NULL, NULL, NULL, now() - interval '2 hours'),"
        " (2, 'webhook', 'pending', NULL, 'w1', now() + interval '1 minute', NULL, now()),"
        " (3, 'webhook', 'failed', NULL, NULL, NULL, 'cannot render review notice: x', now())"
    )
    conn.execute(
        "INSERT INTO guard.report_deliveries (report_date, channel, status, sent_at, claimed_by,"
        " claimed_until, last_error) VALUES"
        " ('2026-11-24', 'email', 'sent', now(), NULL, NULL, NULL),"
        " ('2026-11-25', 'email', 'pending', NULL, 'w1', now() - interval '1 s', NULL),"
        " ('2026-11-25', 'webhook', 'pending', NULL, NULL, NULL, NULL),"
        " ('2026-12-31', 'webhook', 'failed', NULL, NULL, NULL, 'cannot render daily report')"
    )


def test_pending_deliveries_of_each_kind_move_and_come_back(empty_db_url: str) -> None:
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply(to=BEFORE)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        _seed(conn)
        notices = conn.execute(NOTICES).fetchall()
        reports = conn.execute(REPORTS).fetchall()

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.apply(to=MIGRATION) == [MIGRATION]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(MOVED, ("review_notice",)).fetchall() == notices
        assert conn.execute(MOVED, ("report",)).fetchall() == [
            (int(day.strftime("%Y%m%d")), *rest) for day, *rest in reports
        ]
        assert conn.execute("SELECT count(*) FROM guard.deliveries").fetchall() == [(8,)]
        assert conn.execute(
            "SELECT to_regclass('guard.review_notices'), to_regclass('guard.report_deliveries')"
        ).fetchall() == [(None, None)]

    # The claim is a definition from sql/, applied with the last pending migration.
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply()
    with (
        psycopg.connect(empty_db_url, autocommit=True) as conn,
        conn.transaction(force_rollback=True),
    ):
        claim = "SELECT subject FROM guard.claim_deliveries(%s, %s, 'w2', 10, 60)"
        assert conn.execute(claim, ("review_notice", "webhook")).fetchall() == [(1,)]
        assert conn.execute(claim, ("review_notice", "email")).fetchall() == []
        assert conn.execute(claim, ("report", "email")).fetchall() == [(20261125,)]
        assert conn.execute(claim, ("report", "webhook")).fetchall() == [(20261125,)]

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.rollback(to=BEFORE)[-1] == MIGRATION
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(NOTICES).fetchall() == notices
        assert conn.execute(REPORTS).fetchall() == reports
        assert conn.execute("SELECT to_regclass('guard.deliveries')").fetchall() == [(None,)]
