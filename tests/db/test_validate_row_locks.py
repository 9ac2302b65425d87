"""`guard db validate` and the application's row locks on old rows: a reconcile batch never waits
for a row someone else has locked (it skips it and comes back to it at the end, alone), and no
transaction of validate holds more calls than one batch."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from guard.schema.lock_retry import LockPolicy
from guard.schema.validate import ValidationReport, _runs, validate
from tests.support.queries import fetch_one

LOCKED_CALL = 5000
WAIT_S = 120.0  # how long the test waits for validate to get somewhere (not a measurement)


def _wait_for(lines: list[str], text: str, done: threading.Event) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = [line for line in list(lines) if text in line]
        if found:
            return found[0]
        assert not done.is_set(), f"validate ended without {text!r}: {lines}"
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in {WAIT_S:g} s: {lines}")


def test_validate_skips_a_locked_old_row_and_reconciles_it_once_released(
    legacy_db_url: str,
) -> None:
    lines: list[str] = []
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["report"] = validate(
                legacy_db_url,
                batch_size=3000,
                progress=lines.append,
                lock_policy=LockPolicy(lock_timeout_ms=100, deadline_s=WAIT_S),
            )
        except BaseException as error:
            outcome["error"] = error
        finally:
            done.set()

    with psycopg.connect(legacy_db_url, application_name="application") as app:
        # The application is about to update an old call: it holds the row lock an UPDATE takes.
        app.execute("SELECT FROM calls WHERE id = %s FOR NO KEY UPDATE", (LOCKED_CALL,))
        app_pid = app.info.backend_pid
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        # The batches went past the locked row without waiting for it: every other call is
        # reconciled while the lock is still held ...
        _wait_for(lines, "calls skipped because they were locked", done)
        left = fetch_one(
            legacy_db_url, "SELECT array_agg(id ORDER BY id) FROM calls WHERE direction IS NULL"
        )
        assert left == ([LOCKED_CALL],)
        assert any("(100 %)" in line and "1 skipped (locked)" in line for line in lines), lines
        # ... then validate waits for that one row alone, and says who holds it.
        waiting = _wait_for(lines, f"reconciling call {LOCKED_CALL}", done)
        assert f"blocked by pid {app_pid} ('application'" in waiting, waiting
        assert not done.is_set()
        app.commit()
    runner.join(timeout=WAIT_S)
    assert "error" not in outcome, outcome
    report: ValidationReport = outcome["report"]
    assert report.complete, report.constraints
    assert report.calls_scanned == 20000
    assert report.corrected["I1_call_direction"] == 20000
    assert report.corrected["I2_customer_link"] == 20000
    with psycopg.connect(legacy_db_url) as conn:
        row = conn.execute(
            "SELECT direction, customer_link_status FROM calls WHERE id = %s", (LOCKED_CALL,)
        ).fetchone()
        assert row == ("inbound", "unlinked")
        audited = conn.execute(
            "SELECT count(*) FROM guard.correction_audit"
            " WHERE entity_type = 'call' AND entity_id = %s AND rule_id = 'I1_call_direction'",
            (LOCKED_CALL,),
        ).fetchone()
        assert audited == (1,)


def test_no_transaction_of_validate_holds_more_than_one_batch_of_calls(legacy_db_url: str) -> None:
    """Every reconciled call's row version carries the id of the transaction that wrote it
    (xmin): none of validate's transactions wrote more calls than --batch-size, and it started
    with small batches however large --batch-size is."""
    report = validate(legacy_db_url, batch_size=4000, pause_ratio=0)
    assert report.complete, report.constraints
    with psycopg.connect(legacy_db_url) as conn:
        per_transaction = [
            count
            for (count,) in conn.execute(
                "SELECT count(*) FROM calls GROUP BY xmin::text ORDER BY min(id)"
            ).fetchall()
        ]
    assert sum(per_transaction) == 20000, "every old call was rewritten by the reconcile"
    assert max(per_transaction) <= 4000, per_transaction
    assert per_transaction[0] <= 500, "the first batch is small, whatever --batch-size is"


def test_runs_of_locked_ids_exclude_the_skipped_ones() -> None:
    ids = [1, 2, 3, 5, 8, 9, 13]
    assert _runs(ids, {1, 2, 3, 5, 8, 9, 13}) == [(1, 14)]
    assert _runs(ids, {1, 2, 5, 8, 13}) == [(1, 3), (5, 9), (13, 14)]
    assert _runs(ids, set()) == []
    assert _runs([], set()) == []


# A call whose reconcile is slow the first few times: a BEFORE UPDATE trigger sleeps while a
# sequence (not rolled back with the batch) is below 4. One second each: a batch that waited for
# it would hold the row locks of its whole range for that long.
_SLOW_CALL = 7000
_SLOW_TRIGGER = f"""
CREATE SEQUENCE public.slow_reconcile_firings;
CREATE FUNCTION public.slow_reconcile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('public.slow_reconcile_firings') < 4 THEN
        PERFORM pg_sleep(1);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER slow_reconcile BEFORE UPDATE ON public.calls
FOR EACH ROW WHEN (old.id = {_SLOW_CALL}) EXECUTE FUNCTION public.slow_reconcile();
"""


@pytest.mark.serial
def test_a_batch_that_runs_past_the_lock_timeout_is_cut_and_retried_smaller(
    legacy_db_url: str,
) -> None:
    """A batch is bounded in time, not only by its size from the batch before: one that runs past
    --lock-timeout is cancelled and rolled back (its row locks released) and the same range tried
    again at half the size. The application updating a neighbour of the slow call waits about
    one lock timeout, never the second the slow statement would take."""
    with psycopg.connect(legacy_db_url, autocommit=True) as setup:
        setup.execute(_SLOW_TRIGGER.encode())
    waits: list[float] = []
    stop = threading.Event()

    def application() -> None:
        with psycopg.connect(legacy_db_url, autocommit=True, application_name="application") as app:
            while not stop.is_set():
                began = time.monotonic()
                app.execute("UPDATE calls SET status = 'ended' WHERE id = %s", (_SLOW_CALL + 1,))
                waits.append(time.monotonic() - began)
                time.sleep(0.005)

    writer = threading.Thread(target=application, daemon=True)
    writer.start()
    try:
        report = validate(
            legacy_db_url,
            batch_size=4000,
            pause_ratio=0,
            lock_policy=LockPolicy(lock_timeout_ms=100, deadline_s=WAIT_S),
        )
    finally:
        stop.set()
        writer.join(timeout=10)
    assert report.complete, report.constraints
    assert report.batches_cut >= 3, "each of the three slow firings cut its batch"
    # The application's own update of its call normalised that one (the legacy-row trigger).
    assert report.corrected["I1_call_direction"] >= 19999
    with psycopg.connect(legacy_db_url) as conn:
        left = conn.execute("SELECT count(*) FROM calls WHERE direction IS NULL").fetchone()
        assert left == (0,)
        firings = conn.execute("SELECT last_value FROM public.slow_reconcile_firings").fetchone()
        fixed = conn.execute("SELECT direction FROM calls WHERE id = %s", (_SLOW_CALL,)).fetchone()
    assert firings is not None and firings[0] >= 4
    assert fixed == ("inbound",)
    assert waits, "the application wrote during validate"
    # A batch lock held through a 1 s sleep would show as a wait of about a second.
    assert max(waits) < 0.5, sorted(waits)[-5:]
