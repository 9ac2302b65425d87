"""Taking locks on tables a live application writes, without making the application wait
(docs/dba.md, "Locks: what a migration does to the application").

Each attempt waits at most a short lock_timeout, rolls back whole, sleeps with backoff and jitter
and tries again until a deadline: a writer queued behind it never waits longer than one attempt
(GitLab's `with_lock_retries`, without its growing timeout: the bound is the point)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import psycopg

from guard.backoff import exponential_delay
from guard.connection import connect, scalar
from guard.errors import GuardError

T = TypeVar("T")

_BLOCKERS = """
SELECT
    b.pid,
    coalesce(nullif(b.application_name, ''), 'no application_name'),
    coalesce(b.usename::text, '?'),
    coalesce(b.state, '?'),
    extract(epoch FROM clock_timestamp() - coalesce(b.xact_start, b.query_start, b.backend_start))
        ::float8,
    w.relation,
    w.mode,
    w.locktype
FROM unnest(pg_blocking_pids(%(pid)s)) AS blocker (pid)
JOIN pg_stat_activity AS b ON b.pid = blocker.pid
LEFT JOIN LATERAL (
    SELECT l.relation::regclass::text AS relation, l.mode, l.locktype
    FROM pg_locks AS l
    WHERE l.pid = %(pid)s AND NOT l.granted
    LIMIT 1
) AS w ON TRUE
ORDER BY b.xact_start NULLS LAST
LIMIT 1
"""


@dataclass(frozen=True)
class LockPolicy:
    """How long one attempt may wait for a lock, how long to keep trying, how long DDL may run."""

    lock_timeout_ms: int = 100
    deadline_s: float = 15 * 60
    statement_timeout_ms: int = 10_000  # statements that take locks are meant to be instant
    first_sleep_s: float = 0.05
    max_sleep_s: float = 2.0
    spent_budget_wait_ms: int = 10  # LockBudget's floor

    def sleep_for(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff, half of each step random so that two migrators fall out of step."""
        step = exponential_delay(attempt, self.first_sleep_s, self.max_sleep_s, factor=1.5)
        return step / 2 + rng.uniform(0, step / 2)


# Relation locks that stop the application's reads or writes (CREATE TRIGGER's SHARE ROW
# EXCLUSIVE, ALTER TABLE's ACCESS EXCLUSIVE...); SHARE UPDATE EXCLUSIVE (VALIDATE CONSTRAINT)
# and the weaker ones stop neither.
_ARM = """
WITH held AS (
    SELECT
        %(clock_started)s OR EXISTS (
            SELECT FROM pg_locks
            WHERE
                pid = pg_backend_pid()
                AND locktype = 'relation'
                AND granted
                AND mode IN (
                    'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'
                )
        ) AS blocking
)
SELECT
    blocking,
    set_config(
        'lock_timeout', CASE WHEN blocking THEN %(left)s ELSE %(budget)s END, TRUE
    ),
    set_config('statement_timeout', %(statement_timeout)s, TRUE)
FROM held
"""


class LockBudget:
    """All the lock waits of one attempt, together, within the attempt's lock_timeout.

    A writer queued behind the attempt waits until it ends, so with the full lock_timeout for
    every statement the waits add up (`0002` held `calls` while it waited for `appointments`).
    `arm()`, before every statement, gives it what is left of the budget, counted from the
    statement after which the attempt first holds a lock that blocks the application. Once the
    budget is spent a lock wait still gets `floor_ms`: a short write holding the lock ends within
    it, and a near-zero wait would fail on any table that is never idle."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        budget_ms: int,
        *,
        floor_ms: int,
        statement_timeout_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.budget_ms = budget_ms
        self.floor_ms = min(floor_ms, budget_ms)
        self.statement_timeout_ms = statement_timeout_ms
        self.clock = clock
        self.started: float | None = None  # when the statement that first blocked began
        self._previous: float | None = None  # when the statement before this one began

    def arm(self) -> int:
        """Set lock_timeout (and statement_timeout) for the next statement; return the first."""
        now = self.clock()
        # Writers may have queued since the statement that took the first blocking lock began.
        since = self.started if self.started is not None else self._previous
        left_ms = (
            self.budget_ms
            if since is None
            else max(self.floor_ms, round(self.budget_ms - (now - since) * 1000))
        )
        row = self.conn.execute(
            _ARM,
            {
                "clock_started": self.started is not None,
                "left": f"{left_ms}ms",
                "budget": f"{self.budget_ms}ms",
                "statement_timeout": f"{self.statement_timeout_ms}ms",
            },
        ).fetchone()
        if self.started is None and since is not None and row is not None and row[0]:
            self.started = since
        self._previous = now
        return left_ms if self.started is not None else self.budget_ms


@dataclass(frozen=True)
class Blocker:
    """The session that held the lock an attempt waited for."""

    pid: int
    application_name: str
    role: str
    state: str
    held_s: float
    relation: str | None
    mode: str | None
    locktype: str | None

    def describe(self) -> str:
        wanted = (
            f"{self.mode} on {self.relation}"
            if self.relation
            else f"{self.mode or 'a lock'} ({self.locktype or '?'})"
        )
        return (
            f"waiting for {wanted}, blocked by pid {self.pid} ({self.application_name!r},"
            f" role {self.role}, {self.state}, transaction open {self.held_s:.1f} s)"
        )


class AttemptOverTime(Exception):
    """An attempt ran past the time it may hold its locks; it rolled back, and may be retried."""


class LockDeadlineExceeded(GuardError):
    """Every attempt timed out until the deadline; the work was rolled back."""


# How long the longest of the sessions queued behind the attempt has waited (for a lock it holds
# or one it waits for itself: a lock queue is first come, first served).
_LONGEST_WAIT_BEHIND = """
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)) * 1000, 0)
FROM pg_locks AS l
WHERE NOT l.granted AND l.pid <> %(pid)s AND l.waitstart IS NOT NULL
  AND %(pid)s = ANY (pg_blocking_pids(l.pid))
"""


# The hold guard cuts an attempt this much before a waiting session has waited the whole lock
# timeout: the time between two looks, the cancel and the rollback, so that the whole wait stays
# within the lock timeout.
HOLD_GUARD_REACTION_MS = 20
HOLD_GUARD_LOOK_S = 0.01  # the hold guard's look, within `hold`


def hold_guard_cancel_after_ms(lock_timeout_ms: float) -> float:
    """How long a session queued behind an attempt may wait before the hold guard cancels it (at
    least half the lock timeout, so that a tiny one is not cut at once)."""
    return max(lock_timeout_ms / 2, lock_timeout_ms - HOLD_GUARD_REACTION_MS)


class AttemptWatch:
    """A second connection and a thread that watch the session doing the work while an attempt
    runs (`attempt`), sampling who blocks it (`last`) so that a retry and giving up name them.

    Within `hold` it is also the hold guard: once a session queued behind the attempt has waited
    its lock timeout (less HOLD_GUARD_REACTION_MS) it cancels the attempt's statement, and the
    attempt is retried as after LockNotAvailable. lock_timeout bounds the attempt's own waits;
    this bounds the application's, whatever the attempt does meanwhile (running more statements
    while it holds a lock, holding row locks). An attempt nobody waits for is never cut."""

    def __init__(self, database_url: str | None, pid: int) -> None:
        self.database_url = database_url
        self.pid = pid
        self.last: Blocker | None = None
        self.cancels = 0  # cancels sent; an attempt that saw QueryCanceled checks it
        self._limit_ms: float | None = None  # the lock timeout held, within `hold`
        self._attempt_started = 0.0
        self._next_sample = 0.0
        self._mutex = threading.Lock()
        self._active = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> Self:
        self._conn = connect(
            self.database_url, autocommit=True, application_name="guard db (lock watch)"
        )
        self._thread = threading.Thread(target=self._run, name="lock-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._active.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._conn is not None:
            self._conn.close()

    @contextmanager
    def attempt(self) -> Iterator[None]:
        self.last = None
        self._attempt_started = time.monotonic()
        self._active.set()
        try:
            yield
        finally:
            self._active.clear()

    @contextmanager
    def hold(self, limit_ms: int) -> Iterator[None]:
        """Within an attempt: cut it once a session queued behind it has waited limit_ms."""
        with self._mutex:
            self._limit_ms = float(limit_ms)
        try:
            yield
        finally:
            with self._mutex:
                self._limit_ms = None

    def _run(self) -> None:
        assert self._conn is not None
        while not self._stop.is_set():
            self._active.wait()
            if self._stop.is_set():
                return
            try:
                pause = self._look(self._conn)
            except psycopg.Error:
                return  # a bound on top of lock_timeout, and a courtesy: they still hold
            time.sleep(pause)

    def _look(self, conn: psycopg.Connection[Any]) -> float:
        """One look while an attempt runs; returns how long to sleep before the next."""
        now = time.monotonic()
        if self._limit_ms is not None:
            waited_ms = float(scalar(conn, _LONGEST_WAIT_BEHIND, {"pid": self.pid}) or 0.0)
            with self._mutex:
                limit = self._limit_ms
                if limit is not None and waited_ms >= hold_guard_cancel_after_ms(limit):
                    conn.execute("SELECT pg_cancel_backend(%s)", (self.pid,))
                    self.cancels += 1
                    self._limit_ms = None  # one cancel per attempt
        # Sample often while a short wait may be on; slowly once a long statement is running.
        sample_every = 0.02 if now - self._attempt_started < 2 else 0.25
        if now >= self._next_sample:
            self._next_sample = now + sample_every
            row = conn.execute(_BLOCKERS, {"pid": self.pid}).fetchone()
            if row is not None:
                self.last = Blocker(*row)
        return HOLD_GUARD_LOOK_S if self._limit_ms is not None else sample_every


def run_with_lock_retries(
    attempt: Callable[[int], T],
    *,
    what: str,
    policy: LockPolicy,
    watch: AttemptWatch | None,
    progress: Callable[[str], None],
    rng: random.Random | None = None,
) -> T:
    """Call `attempt(lock_timeout_ms)`, which leaves nothing behind when it raises, until it does
    not fail on a lock timeout, or the deadline (LockDeadlineExceeded naming the last blocker)."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    started = time.monotonic()
    last_report = started
    blocker: Blocker | None = None
    number = 0
    while True:
        number += 1
        try:
            with watch.attempt() if watch is not None else nullcontext():
                return attempt(policy.lock_timeout_ms)
        except (psycopg.errors.LockNotAvailable, AttemptOverTime):
            if watch is not None and watch.last is not None:
                blocker = watch.last
        waited = time.monotonic() - started
        pause = policy.sleep_for(number, rng)
        who = blocker.describe() if blocker else "blocker not seen (it let go at once)"
        if waited + pause > policy.deadline_s:
            raise LockDeadlineExceeded(
                f"{what}: gave up after {number} attempts in {waited:.1f} s (--lock-deadline"
                f" {policy.deadline_s:g} s); nothing of it was changed; last {who}"
            )
        now = time.monotonic()
        if number == 1 or now - last_report >= 5:
            last_report = now
            progress(
                f"{what}: attempt {number} timed out after {policy.lock_timeout_ms} ms, {who};"
                f" retrying for up to {policy.deadline_s - waited:.0f} s more"
            )
        time.sleep(pause)


def set_session_timeouts(
    conn: psycopg.Connection[Any], lock_timeout_ms: int, statement_timeout_ms: int
) -> None:
    """lock_timeout and statement_timeout for the session's next statements, each committing on
    its own (a `-- transactional: false` migration, `guard db validate`); the caller resets them."""
    conn.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (f"{lock_timeout_ms}ms", f"{statement_timeout_ms}ms"),
    )
