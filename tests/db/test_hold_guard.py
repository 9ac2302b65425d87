"""The lock budget, held from the application's side (lock_retry.AttemptWatch.hold): an attempt
that holds a lock the application waits for, and goes on running statements, is cut once an
application session has waited one lock timeout, rolled back and retried. lock_timeout alone
bounds only the attempt's own waits: a migration that took the lock at once and then ran for
300 ms made every writer of the table wait 300 ms."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from guard.schema.lock_retry import LockPolicy
from guard.schema.migrate import Migrator
from tests.support.migrations import shipped_migrations
from tests.support.queries import execute, fetch_one
from tests.support.writer import Writer

# The first two attempts hold the lock for 300 ms after taking it; the third does not (a
# sequence is not rolled back with the attempt), so the migration can complete.
_SLOW_HOLD = """
LOCK TABLE public.hold_probe IN SHARE ROW EXCLUSIVE MODE;

SELECT pg_sleep(CASE WHEN nextval('public.hold_probe_attempts') < 3 THEN 0.3 ELSE 0 END);

ALTER TABLE public.hold_probe ADD COLUMN a int;
"""


def _slow_hold_migrations(db_url: str, tmp_path: Path) -> Path:
    """The table and sequence the slow migration uses, and the shipped migrations with it."""
    execute(
        db_url,
        "CREATE TABLE public.hold_probe (id int)",
        "CREATE SEQUENCE public.hold_probe_attempts",
    )
    return shipped_migrations(
        tmp_path,
        {
            "0950_slow_hold.sql": _SLOW_HOLD,
            "0950_slow_hold.rollback.sql": "ALTER TABLE public.hold_probe DROP COLUMN a;\n",
        },
    )


@pytest.mark.serial
def test_an_attempt_that_holds_a_lock_a_writer_waits_for_is_cut_at_one_lock_timeout(
    db_url: str, tmp_path: Path
) -> None:
    directory = _slow_hold_migrations(db_url, tmp_path)
    # Last, so that the definitions step goes in a transaction of its own, not under 0950's lock.
    (directory / "0951_outside_a_transaction.sql").write_text(
        "-- transactional: false\nSELECT 1;\n"
    )
    (directory / "0951_outside_a_transaction.rollback.sql").write_text(
        "-- transactional: false\nSELECT 1;\n"
    )
    budget_ms = 100
    policy = LockPolicy(lock_timeout_ms=budget_ms, deadline_s=60)
    lines: list[str] = []
    writer = Writer(db_url, "INSERT INTO public.hold_probe (id) VALUES (1)", pause_s=0.01)
    writer.start()
    try:
        time.sleep(0.1)
        with Migrator(db_url, directory, lock_policy=policy, progress=lines.append) as migrator:
            applied = migrator.apply()
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    assert writer.error is None, writer.error
    assert applied == ["0950_slow_hold", "0951_outside_a_transaction"]
    attempts = fetch_one(db_url, "SELECT last_value FROM public.hold_probe_attempts")
    # Uncut, the first attempt would have committed after its sleep. On a loaded machine an attempt
    # without the sleep can also outlast one lock timeout and is cut as well, rightly.
    assert attempts is not None and attempts[0] >= 3, "the two holding attempts were cut"
    assert any("applying 0950_slow_hold: attempt 1" in line for line in lines), lines
    # Uncut, the writer waited the whole 300 ms twice; cut, about one lock timeout (the guard
    # looks every 10 ms, then the rollback), plus a busy machine's slack.
    worst = writer.worst
    assert worst < (budget_ms + 120) / 1000, f"worst insert {worst * 1000:.0f} ms"


@pytest.mark.serial
def test_an_attempt_nobody_waits_for_is_never_cut(db_url: str, tmp_path: Path) -> None:
    """However long it holds its lock: the guard bounds the application's wait, not the work."""
    directory = _slow_hold_migrations(db_url, tmp_path)
    policy = LockPolicy(lock_timeout_ms=100, deadline_s=60)
    with Migrator(db_url, directory, lock_policy=policy) as migrator:
        applied = migrator.apply()
    assert applied == ["0950_slow_hold"]
    attempts = fetch_one(db_url, "SELECT last_value FROM public.hold_probe_attempts")
    assert attempts == (1,), "the first attempt held its lock 300 ms, waited for by no one"
