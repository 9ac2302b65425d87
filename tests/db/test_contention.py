"""Where not waiting, or waiting, is the point: two sessions at once, with real locks held by an
open transaction. A lock_timeout turns an unwanted wait into an error instead of a hang; an
expected wait is observed from a second thread."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.support.queries import execute, fetch_all
from tests.support.seeds import seed_phantom


def test_two_delivery_workers_never_wait_for_each_other(db_url: str) -> None:
    """A worker's uncommitted claim does not hold back another worker: it gets the next due
    delivery at once (SKIP LOCKED), not a lock wait on the first worker's row."""
    execute(
        db_url,
        (
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details)"
            " SELECT 'contention:' || g, 'booked_without_appointment', 1, 'call', g, 'high',"
            " 'booked but no appointment', '{}' FROM generate_series(1, 2) AS g"
        ),
        "SELECT guard.enqueue_alert_deliveries(ARRAY['stdout'])",
    )
    with psycopg.connect(db_url) as first, psycopg.connect(db_url, autocommit=True) as second:
        held = first.execute(
            "SELECT subject FROM guard.claim_deliveries('alert', 'stdout', 'w1', 1, 30)"
        ).fetchall()
        assert len(held) == 1
        second.execute("SET lock_timeout = '3s'")
        got = second.execute(
            "SELECT subject FROM guard.claim_deliveries('alert', 'stdout', 'w2', 1, 30)"
        ).fetchall()
        assert len(got) == 1 and got != held, "the second worker takes the other delivery"
        first.commit()


def test_a_delivery_leased_by_a_worker_is_not_handed_to_another(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details)"
            " VALUES ('lease:1', 'booked_without_appointment', 1, 'call', 1, 'high', 'x', '{}')"
        )
        conn.execute("SELECT guard.enqueue_alert_deliveries(ARRAY['stdout'])")
        first = conn.execute(
            "SELECT subject FROM guard.claim_deliveries('alert', 'stdout', 'w1', 10, 30)"
        ).fetchall()
        second = conn.execute(
            "SELECT subject FROM guard.claim_deliveries('alert', 'stdout', 'w2', 10, 30)"
        ).fetchall()
    assert len(first) == 1
    assert second == [], "the lease of the first worker (committed) still runs"


def test_a_second_reconcile_waits_for_the_first(db_url: str) -> None:
    """Two reconcile passes at once would both act on the same rows: the second waits for the
    first's transaction (an advisory lock), even when there is nothing to do."""
    with psycopg.connect(db_url) as first, psycopg.connect(db_url, autocommit=True) as second:
        first.execute("SELECT * FROM guard.reconcile()").fetchall()
        second.execute("SET lock_timeout = '500ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            second.execute("SELECT * FROM guard.reconcile()").fetchall()
        first.commit()
        assert second.execute("SELECT count(*) FROM guard.reconcile()").fetchone() is not None


def test_a_second_begin_for_the_same_call_waits_and_then_sees_the_first(db_url: str) -> None:
    """begin_booking_attempt locks the call: a second begin while the first is uncommitted
    waits for it and then answers in_flight, instead of racing it into a duplicate-key error."""
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id, direction)"
            " VALUES (1, 1, 'c1', 'inbound')"
        ),
    )
    answers: list[object] = []
    with psycopg.connect(db_url) as first:
        started = first.execute("SELECT outcome FROM guard.begin_booking_attempt(1, 7)").fetchone()
        assert started == ("started",)

        def second_begin() -> None:
            with psycopg.connect(db_url, autocommit=True) as second:
                try:
                    answers.append(
                        second.execute(
                            "SELECT outcome FROM guard.begin_booking_attempt(1, 7)"
                        ).fetchone()
                    )
                except psycopg.Error as error:
                    answers.append(error)

        thread = threading.Thread(target=second_begin)
        thread.start()
        time.sleep(0.5)
        assert answers == [], "the second begin waits for the first's transaction"
        first.commit()
        thread.join(timeout=30)
    assert answers == [("in_flight",)]


def _wait_for_lock_wait(url: str, pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as observer:
        while time.monotonic() < deadline:
            row = observer.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row == ("Lock",):
                return
            time.sleep(0.05)
    raise AssertionError("reconcile never waited for the held row")


def test_reconcile_audits_the_call_as_it_is_when_it_rolls_it_back(db_url: str) -> None:
    """Reconcile's rollback of a phantom booking locks the call before it records the call's
    before-image: a write committed while reconcile waited for the row is in the audit's
    'before', not the value of the statement's older snapshot."""
    seed_phantom(db_url, minutes_ago=20)
    errors: list[BaseException] = []
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url) as reconciler:
        holder.execute("UPDATE calls SET requires_manual_processing = TRUE WHERE id = 1")
        pid = reconciler.info.backend_pid

        def reconcile() -> None:
            try:
                reconciler.execute("SELECT * FROM guard.reconcile()").fetchall()
                reconciler.commit()
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        thread = threading.Thread(target=reconcile)
        thread.start()
        _wait_for_lock_wait(db_url, pid)
        holder.commit()
        thread.join(timeout=60)
    assert errors == []
    before = fetch_all(
        db_url,
        "SELECT before ->> 'requires_manual_processing' FROM guard.correction_audit"
        " WHERE rule_id = 'I4_booked_outcome' AND entity_id = 1",
    )
    assert before == [("true",)]
