"""Commit-time behaviour of the alert outbox and the review queue, with real commits."""

from __future__ import annotations

import threading

import psycopg

from guard.connection import connect
from tests.support.queries import execute
from tests.support.seeds import seed_phantom


def test_new_alerts_wake_the_listener_once_at_commit_only(db_url: str) -> None:
    seed_phantom(db_url)
    with psycopg.connect(db_url, autocommit=True) as listener, psycopg.connect(db_url) as writer:
        listener.execute("LISTEN guard_alerts")
        writer.execute("SELECT * FROM guard.detect()")
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == [], "nothing before commit"
        writer.commit()
        woken = list(listener.notifies(timeout=5, stop_after=1))
        assert [(n.channel, n.payload) for n in woken] == [("guard_alerts", "new")]
        # A pass that inserts nothing (only bumps) wakes nobody.
        writer.execute("SELECT * FROM guard.detect()")
        writer.commit()
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
        # A rolled-back pass wakes nobody either.
        writer.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(),"
            " resolution = 'manual'"
        )
        writer.execute("SELECT * FROM guard.detect()")
        writer.rollback()
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


def test_concurrent_claims_never_hand_out_an_item_twice(db_url: str) -> None:
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id)"
            " SELECT g, 1, 'c' || g FROM generate_series(1, 200) AS g"
        ),
        "SELECT guard.enqueue_review(1, g, NULL, 'other') FROM generate_series(1, 200) AS g",
    )
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def reviewer(name: str) -> None:
        mine: list[int] = []
        with connect(db_url) as conn:
            barrier.wait()
            while True:
                # Hold each claim's transaction open a moment so the others run into its locks.
                with conn.transaction():
                    rows = conn.execute(
                        "SELECT id FROM guard.review_claim(%s, 5)", (name,)
                    ).fetchall()
                    conn.execute("SELECT pg_sleep(0.01)")
                if not rows:
                    break
                mine += [item_id for (item_id,) in rows]
        claimed[name] = mine

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [item for items in claimed.values() for item in items]
    assert len(everything) == 200, "every item claimed"
    assert len(set(everything)) == 200, "no item claimed twice"
    assert sum(1 for items in claimed.values() if items) > 1, "the work was shared"


def test_a_claim_skips_items_another_reviewer_holds_without_waiting(db_url: str) -> None:
    """Non-blocking is the point of the claim: while one reviewer's claim is still uncommitted,
    a second reviewer gets the next open item at once. A claim that waits instead would, once
    the first commits, find its item no longer open and return nothing while items remain."""
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id)"
            " SELECT g, 1, 'c' || g FROM generate_series(1, 2) AS g"
        ),
        "SELECT guard.enqueue_review(1, g, NULL, 'other') FROM generate_series(1, 2) AS g",
    )
    with psycopg.connect(db_url) as first, psycopg.connect(db_url, autocommit=True) as second:
        held = first.execute("SELECT id FROM guard.review_claim('first')").fetchall()
        assert len(held) == 1
        # A wait would be a lock wait on the held row: refuse it rather than hang.
        second.execute("SET lock_timeout = '3s'")
        got = second.execute("SELECT id FROM guard.review_claim('second')").fetchall()
        assert len(got) == 1, "the second reviewer gets the other open item"
        assert got != held
        first.commit()
