"""One lock-wait budget per migration attempt: a writer queued behind an attempt waits until the
attempt ends, so the attempt's lock waits together, not each of them, must stay within
--lock-timeout. Real sessions hold the real locks; the writer's latencies are compared with the
budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from guard.schema.lock_retry import Blocker, LockBudget, LockPolicy
from guard.schema.migrate import Migrator
from tests.support.migrations import shipped_migrations
from tests.support.queries import execute
from tests.support.writer import Writer


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def in_transaction(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE public.budget_probe (id int)")
    with psycopg.connect(db_url) as conn:
        yield conn
        conn.rollback()


def _lock_timeout(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    assert row is not None
    return str(row[0])


def test_the_clock_starts_with_the_first_lock_that_blocks_the_application(
    in_transaction: psycopg.Connection[Any],
) -> None:
    conn = in_transaction
    clock = _Clock()
    budget = LockBudget(conn, 300, floor_ms=10, statement_timeout_ms=5000, clock=clock)

    assert budget.arm() == 300 and _lock_timeout(conn) == "300ms"
    conn.execute("SELECT count(*) FROM public.budget_probe")  # ACCESS SHARE: nobody waits
    clock.now += 0.1
    assert budget.arm() == 300 and _lock_timeout(conn) == "300ms"
    conn.execute("LOCK TABLE public.budget_probe IN SHARE UPDATE EXCLUSIVE MODE")  # writers go on
    clock.now += 0.1
    assert budget.arm() == 300 and _lock_timeout(conn) == "300ms"
    conn.execute("LOCK TABLE public.budget_probe IN SHARE ROW EXCLUSIVE MODE")  # writers wait
    clock.now += 0.12
    # Writers may have queued since that statement began, 120 ms ago.
    assert budget.arm() == 180 and _lock_timeout(conn) == "180ms"
    row = conn.execute("SELECT current_setting('statement_timeout')").fetchone()
    assert row == ("5s",)
    clock.now += 0.1
    assert budget.arm() == 80 and _lock_timeout(conn) == "80ms"
    clock.now += 0.5
    # Spent: a lock wait still gets the floor, or a table never idle could never be taken.
    assert budget.arm() == 10 and _lock_timeout(conn) == "10ms"


def test_a_floor_larger_than_the_budget_is_the_budget(
    in_transaction: psycopg.Connection[Any],
) -> None:
    clock = _Clock()
    budget = LockBudget(in_transaction, 5, floor_ms=10, statement_timeout_ms=5000, clock=clock)
    budget.arm()
    in_transaction.execute("LOCK TABLE public.budget_probe IN ACCESS EXCLUSIVE MODE")
    clock.now += 1
    assert budget.arm() == 5 and _lock_timeout(in_transaction) == "5ms"


def _waiting_for(conn: psycopg.Connection[Any], pid: int, table: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted"
        " AND relation = %s::regclass)",
        (pid, table),
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.serial
def test_two_lock_waits_of_one_attempt_do_not_add_up_in_a_writers_wait(
    db_url: str, tmp_path: Path
) -> None:
    """The attempt waits 250 ms for the first table (a reader holds it), gets it, and then waits
    for the second, which another reader holds for seconds. With a lock_timeout per statement
    the writer of the first table waited for both waits (250 + 300 ms); with the budget, for
    about one budget."""
    execute(
        db_url,
        "CREATE TABLE public.budget_first (id int)",
        "CREATE TABLE public.budget_second (id int)",
    )
    directory = shipped_migrations(
        tmp_path,
        {
            "0950_two_locks.sql": (
                "ALTER TABLE public.budget_first ADD COLUMN a int;\n\n"
                "ALTER TABLE public.budget_second ADD COLUMN b int;\n"
            ),
            "0950_two_locks.rollback.sql": (
                "ALTER TABLE public.budget_second DROP COLUMN b;\n\n"
                "ALTER TABLE public.budget_first DROP COLUMN a;\n"
            ),
        },
    )
    # Last, so that the definitions (the grants and comments every apply runs) go in a
    # transaction of their own, not under 0950's locks.
    (directory / "0951_outside_a_transaction.sql").write_text(
        "-- transactional: false\nSELECT 1;\n"
    )
    (directory / "0951_outside_a_transaction.rollback.sql").write_text(
        "-- transactional: false\nSELECT 1;\n"
    )
    budget_ms, first_wait_s = 300, 0.25
    policy = LockPolicy(lock_timeout_ms=budget_ms, deadline_s=60)

    # The application: an insert into the first table every 10 ms.
    writer = Writer(db_url, "INSERT INTO public.budget_first (id) VALUES (1)", pause_s=0.01)
    with (
        psycopg.connect(db_url, application_name="reader of the first") as first,
        psycopg.connect(db_url, application_name="reader of the second") as second,
        psycopg.connect(db_url, autocommit=True) as watcher,
        Migrator(db_url, directory, lock_policy=policy) as migrator,
    ):
        first.execute("SELECT count(*) FROM public.budget_first")
        second.execute("SELECT count(*) FROM public.budget_second")
        migrator_pid = migrator.conn.info.backend_pid
        timeline: list[str] = []

        def release() -> None:
            while not _waiting_for(watcher, migrator_pid, "public.budget_first"):
                time.sleep(0.005)
            time.sleep(first_wait_s)
            first.rollback()
            timeline.append("first released")
            time.sleep(2.0)  # several attempts time out on the second
            second.rollback()
            timeline.append("second released")

        releaser = threading.Thread(target=release, daemon=True)
        writer.start()
        try:
            time.sleep(0.1)
            releaser.start()
            applied = migrator.apply()
        finally:
            writer.stop.set()
            writer.join(timeout=10)
            releaser.join(timeout=10)
    assert writer.error is None, writer.error

    assert applied == ["0950_two_locks", "0951_outside_a_transaction"]
    assert timeline == ["first released", "second released"]
    # The writer kept writing while the migration retried, and never waited much longer than one
    # budget (plus the floor and a busy machine's slack); both waits would be 550 ms.
    assert len(writer.samples) > 50, "the writer was blocked for long stretches"
    worst = writer.worst
    assert worst < (budget_ms + policy.spent_budget_wait_ms + 100) / 1000, (
        f"worst insert {worst * 1000:.0f} ms"
    )
    assert worst > first_wait_s, "the writer never queued behind the first wait"


# run_with_lock_retries on a clock the test moves (no database, no real sleep): each attempt
# times out after 0.25 s and each pause is 0.25 s (the jitter's upper end), so waited + pause
# meets the deadline exactly at one attempt, on the other side at the next.
class _UpperJitter:
    def uniform(self, low: float, high: float) -> float:
        return high


class _FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _retry_until_deadline(
    monkeypatch: pytest.MonkeyPatch, deadline_s: float, attempt_s: float = 0.25
) -> tuple[list[int], list[str], str]:
    from guard.schema import lock_retry

    clock = _FakeTime()
    monkeypatch.setattr(lock_retry, "time", clock)
    timeouts: list[int] = []
    reports: list[str] = []

    def attempt(timeout_ms: int) -> None:
        timeouts.append(timeout_ms)
        assert len(timeouts) < 200, "never gave up"
        clock.now += attempt_s
        raise psycopg.errors.LockNotAvailable("lock timeout")

    policy = LockPolicy(
        lock_timeout_ms=100,
        deadline_s=deadline_s,
        first_sleep_s=0.25,
        max_sleep_s=0.25,
    )
    with pytest.raises(lock_retry.LockDeadlineExceeded) as raised:
        lock_retry.run_with_lock_retries(
            attempt,
            what="probe",
            policy=policy,
            watch=None,
            progress=reports.append,
            rng=_UpperJitter(),  # type: ignore[arg-type]
        )
    return timeouts, reports, str(raised.value)


def test_lock_retries_give_up_only_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # attempt 3 ends at 0.75 s + 0.5 s of pauses = 1.25 s waited; + 0.25 s pause = 1.5: exactly
    # the deadline, so it sleeps and tries once more; attempt 4 would end past it and gives up.
    timeouts, reports, message = _retry_until_deadline(monkeypatch, 1.5)
    assert timeouts == [100] * 4  # every attempt waits the same: the application's bound
    assert "gave up after 4 attempts in 1.8 s (--lock-deadline 1.5 s)" in message
    assert "blocker not seen" in message
    timeouts, _, message = _retry_until_deadline(monkeypatch, 1.49)
    assert len(timeouts) == 3
    assert "gave up after 3 attempts in 1.2 s" in message
    # the first attempt is reported, with the time left of the deadline
    assert reports[0] == (
        "probe: attempt 1 timed out after 100 ms, blocker not seen (it let go at once);"
        " retrying for up to 1 s more"
    )


def test_lock_retries_report_at_most_every_5_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each round is 0.25 s of attempt and 0.25 s of pause: reports at attempt 1 (0.25 s), then
    # at the first attempt 5 s or more after the last report: attempt 11 at exactly 5 s after it
    # (5.25 s), 21 at 10.25 s. Attempt 25 ends at 12.25 s and gives up.
    timeouts, reports, _ = _retry_until_deadline(monkeypatch, 12.0)
    numbers = [int(r.split("attempt ", 1)[1].split(" ", 1)[0]) for r in reports]
    assert numbers == [1, 11, 21]
    assert len(timeouts) == 25
    # Rounds of 0.3 s + 0.25 s: no attempt ends exactly 5 s after a report; the first one past
    # it is reported (attempt 11, 5.5 s after attempt 1; 21, 5.5 s after 11). Attempt 22 ends at
    # 11.85 s, and its pause would end past 12 s.
    timeouts, reports, _ = _retry_until_deadline(monkeypatch, 12.0, attempt_s=0.3)
    numbers = [int(r.split("attempt ", 1)[1].split(" ", 1)[0]) for r in reports]
    assert numbers == [1, 11, 21]
    assert len(timeouts) == 22


def test_blocker_watch_samples_often_for_2_seconds_then_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watch's own loop, its connection and clock faked: every 20 ms while the attempt is
    younger than 2 s, every 250 ms from exactly 2 s on; a blocker row becomes `last`."""
    from guard.schema import lock_retry

    row = (42, "bi", "analyst", "active", 25.0, "calls", "AccessShareLock", "relation")
    ages = iter([0.5, 1.999, 2.0, 30.0])
    slept: list[float] = []

    class _Conn:
        def execute(self, query: str, params: dict[str, int]) -> _Conn:
            assert params == {"pid": 7}
            return self

        def fetchone(self) -> tuple[object, ...]:
            return row

    class _Time:
        def monotonic(self) -> float:
            return 100.0 + next(ages)

        def sleep(self, seconds: float) -> None:
            slept.append(seconds)
            if len(slept) == 4:
                watch._stop.set()

    monkeypatch.setattr(lock_retry, "time", _Time())
    watch = lock_retry.AttemptWatch(None, 7)
    watch._conn = _Conn()  # type: ignore[assignment]
    watch._attempt_started = 100.0
    watch._active.set()
    watch._run()
    assert slept == [0.02, 0.02, 0.25, 0.25]
    assert watch.last == lock_retry.Blocker(
        42, "bi", "analyst", "active", 25.0, "calls", "AccessShareLock", "relation"
    )


def test_lock_retry_pause_is_half_fixed_half_jitter() -> None:
    class _LowerJitter:
        def uniform(self, low: float, high: float) -> float:
            return low

    policy = LockPolicy(first_sleep_s=0.4, max_sleep_s=1.0)
    low, high = _LowerJitter(), _UpperJitter()
    # step 0.4, then 0.6 (x 1.5), then 0.9, then capped at 1.0
    pauses = [
        (policy.sleep_for(n, low), policy.sleep_for(n, high))  # type: ignore[arg-type]
        for n in (1, 2, 3, 4)
    ]
    assert pauses == [
        pytest.approx((0.2, 0.4)),
        pytest.approx((0.3, 0.6)),
        pytest.approx((0.45, 0.9)),
        pytest.approx((0.5, 1.0)),
    ]


def test_the_hold_guard_cuts_a_reaction_before_the_lock_timeout_but_never_before_half() -> None:
    from guard.schema.lock_retry import HOLD_GUARD_REACTION_MS, hold_guard_cancel_after_ms

    reaction = HOLD_GUARD_REACTION_MS
    assert hold_guard_cancel_after_ms(100) == 100 - reaction
    assert hold_guard_cancel_after_ms(2 * reaction + 1) == reaction + 1
    assert hold_guard_cancel_after_ms(2 * reaction) == reaction, "where the two meet"
    # below twice the reaction, half the timeout: an odd one keeps its half millisecond
    assert hold_guard_cancel_after_ms(reaction + 5) == (reaction + 5) / 2
    assert hold_guard_cancel_after_ms(LockPolicy().spent_budget_wait_ms) == (
        LockPolicy().spent_budget_wait_ms / 2
    )


@pytest.mark.parametrize(
    ("relation", "mode", "locktype", "wanted"),
    [
        ("calls", "AccessExclusiveLock", "relation", "AccessExclusiveLock on calls"),
        # a row lock: the holder's transaction id, no relation
        (None, "ShareLock", "transactionid", "ShareLock (transactionid)"),
        (None, None, None, "a lock (?)"),
    ],
)
def test_a_blocker_says_what_was_waited_for(
    relation: str | None, mode: str | None, locktype: str | None, wanted: str
) -> None:
    blocker = Blocker(42, "bi", "analyst", "idle in transaction", 2.5, relation, mode, locktype)
    assert blocker.describe() == (
        f"waiting for {wanted}, blocked by pid 42 ('bi', role analyst, idle in transaction,"
        " transaction open 2.5 s)"
    )
