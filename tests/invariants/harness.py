"""Real concurrency for the soundness test: one thread per application connection.

The driver hands each operation to its connection's thread and then *settles*: it waits until
every connection is either idle (nothing queued, nothing running) or waiting for a lock held by
another open transaction of the test (seen in ``pg_blocking_pids``). So statements of different
connections interleave exactly as the drawn sequence says, a statement that has to wait for a
row lock really waits (and proceeds when the holder commits or rolls back), and the outcome of a
sequence does not depend on thread timing. A deadlock among the test's own connections is left
to PostgreSQL's detector (deadlock_timeout lowered per session); the victim's transaction is
rolled back and the sequence continues.

After every successful COMMIT the committing thread checks every invariant on its own
autocommit connection (committed data only) before it takes the next operation."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from tests.invariants.checker import check_invariants, snapshot
from tests.invariants.ops import Op, render

# Errors that mean "this transaction was rolled back, continue"; counted, never a violation.
EXPECTED_ERRORS = {
    "40P01": "deadlock",
    "40001": "serialization_failure",
    "55P03": "lock_timeout",
    "23503": "foreign_key_violation",  # cross-tenant link (I5), call deleted under a writer
    "23514": "check_violation",  # direction 'sideways' (I1)
}

SETTLE_TIMEOUT_S = 30.0


@dataclass
class Event:
    """One operation as it happened, for failure messages."""

    seq: int
    op: Op
    outcome: str = "queued"
    blocked: bool = False

    def __str__(self) -> str:
        waited = " (waited for a lock)" if self.blocked else ""
        return f"#{self.seq:<2} {self.op!r} -> {self.outcome}{waited}"


@dataclass
class Violation:
    after: str
    found: dict[str, list[dict[str, Any]]]
    state: dict[str, list[dict[str, Any]]]


@dataclass
class Stats:
    sequences: int = 0
    operations: int = 0
    commits: int = 0
    checks: int = 0
    lock_waits: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Worker(threading.Thread):
    """An application connection (autocommit off) driven through a queue."""

    def __init__(self, index: int, url: str, harness: Harness) -> None:
        super().__init__(name=f"invariants-c{index}", daemon=True)
        self.index = index
        self.harness = harness
        self.conn = psycopg.connect(url, autocommit=False)
        # a safety net only: waits are meant to end by the holder's commit or rollback
        self.conn.execute("SET lock_timeout = '10s'")
        self.conn.execute("SET deadlock_timeout = '50ms'")
        self.conn.commit()
        self.pid = self.conn.info.backend_pid
        self.checker = psycopg.connect(url, autocommit=True)
        self.inbox: queue.Queue[Event | None] = queue.Queue()
        self.current: Event | None = None
        self.pending = 0  # queued or running; guarded by harness.cond

    def run(self) -> None:
        while True:
            event = self.inbox.get()
            if event is None:
                return
            with self.harness.cond:
                self.current = event
            try:
                self._execute(event)
            except Exception as exc:  # reported to the driver, never swallowed
                event.outcome = f"HARNESS ERROR {type(exc).__name__}: {exc}"
                self.harness.record_failure(f"c{self.index}: {event}")
            finally:
                with self.harness.cond:
                    self.current = None
                    self.pending -= 1
                    self.harness.cond.notify_all()

    def _execute(self, event: Event) -> None:
        op = event.op
        stats = self.harness.stats
        if op.kind == "rollback":
            self.conn.rollback()
            event.outcome = "rolled back"
            return
        if op.kind == "commit":
            try:
                self.conn.commit()
            except psycopg.Error as exc:
                self._failed(event, exc)
                return
            event.outcome = "committed"
            stats.commits += 1
            self.harness.check(self.checker, f"commit of c{self.index} (op #{event.seq})")
            return
        statement, params = render(op)
        try:
            with self.conn.cursor() as cur:
                cur.execute(statement, params)
                event.outcome = f"ok ({cur.rowcount} rows)"
        except psycopg.Error as exc:
            self._failed(event, exc)

    def _failed(self, event: Event, exc: psycopg.Error) -> None:
        state = exc.sqlstate or "?"
        self.conn.rollback()
        name = EXPECTED_ERRORS.get(state)
        if name is None:
            event.outcome = f"UNEXPECTED ERROR {state}: {exc}"
            self.harness.record_failure(f"c{self.index}: {event}")
            return
        self.harness.stats.errors[name] += 1
        event.outcome = f"{name} ({state}), transaction rolled back"

    def close(self) -> None:
        self.inbox.put(None)
        self.join(timeout=10)
        self.conn.close()
        self.checker.close()


class Harness:
    """Up to four application connections, a monitor connection, and the checker."""

    def __init__(self, url: str, n_workers: int = 4) -> None:
        self.url = url
        self.cond = threading.Condition()
        self.stats = Stats()
        self.violations: list[Violation] = []
        self.failures: list[str] = []
        self.events: list[Event] = []
        self.monitor = psycopg.connect(url, autocommit=True)
        self.workers = [Worker(i + 1, url, self) for i in range(n_workers)]
        for worker in self.workers:
            worker.start()
        self.pids = {w.pid: w for w in self.workers}

    # -- results ------------------------------------------------------------------------------

    def record_failure(self, text: str) -> None:
        with self.cond:
            self.failures.append(text)

    def check(self, conn: psycopg.Connection[Any], after: str) -> None:
        self.stats.checks += 1
        found = check_invariants(conn)
        if found:
            state = snapshot(conn)
            with self.cond:
                self.violations.append(Violation(after, found, state))

    # -- driving ------------------------------------------------------------------------------

    def submit(self, op: Op) -> Event:
        event = Event(len(self.events) + 1, op)
        self.events.append(event)
        worker = self.workers[op.conn - 1]
        with self.cond:
            worker.pending += 1
        worker.inbox.put(event)
        self.stats.operations += 1
        return event

    def _blocked(self) -> dict[int, set[int]]:
        """Running workers that wait for a lock -> the pids they wait for."""
        running = [w.pid for w in self.workers if w.current is not None]
        if not running:
            return {}
        rows = self.monitor.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM unnest(%s::int[]) AS pid", [running]
        ).fetchall()
        return {pid: set(blockers) for pid, blockers in rows if blockers}

    def _in_cycle(self, blocked: dict[int, set[int]]) -> bool:
        """True if the test's own connections wait for each other in a cycle (a deadlock the
        server has not broken yet)."""

        def reaches(start: int, node: int, seen: set[int]) -> bool:
            for nxt in blocked.get(node, ()):
                if nxt == start:
                    return True
                if nxt in blocked and nxt not in seen:
                    seen.add(nxt)
                    if reaches(start, nxt, seen):
                        return True
            return False

        return any(reaches(pid, pid, set()) for pid in blocked)

    def settle(self) -> None:
        """Wait until every connection is idle or waiting for a lock held by an idle one."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            with self.cond:
                busy = [w for w in self.workers if w.pending > 0]
                if not busy:
                    return
                self.cond.wait(timeout=0.003)
                busy = [w for w in self.workers if w.pending > 0]
                if not busy:
                    return
                # a worker with queued work but nothing running is about to take it
                if any(w.current is None for w in busy):
                    continue
            blocked = self._blocked()
            if blocked and len(blocked) == len(busy) and not self._in_cycle(blocked):
                for w in busy:
                    if w.current is not None and not w.current.blocked:
                        w.current.blocked = True
                        self.stats.lock_waits += 1
                # re-read: the holder may have finished between the two looks
                with self.cond:
                    if all(w.current is not None for w in busy):
                        return
            if time.monotonic() > deadline:
                raise AssertionError(
                    "the connections did not settle within "
                    f"{SETTLE_TIMEOUT_S} s; blocked: {blocked}\n" + self.history()
                )

    def run(self, ops: tuple[Op, ...], n_conns: int) -> None:
        """Run the operations, then commit what is still open, connection by connection."""
        self.events = []
        for op in ops:
            self.submit(op)
            self.settle()
        for index in range(1, n_conns + 1):
            self.submit(Op(index, "commit"))
            self.settle()
        self.stats.sequences += 1

    def reset(self, seed_sql: str, reset_sql: str, seed_ops: list[Op]) -> None:
        """Empty the tables and re-seed them (committed, through the normal triggers)."""
        with self.monitor.transaction():
            self.monitor.execute(reset_sql)
            self.monitor.execute(seed_sql)
            for op in seed_ops:
                statement, params = render(op)
                self.monitor.execute(statement, params)
        self.violations = []
        self.failures = []

    # -- reporting ----------------------------------------------------------------------------

    def history(self) -> str:
        lines = ["operations, in the order they were issued:"]
        lines += [f"  {event}" for event in self.events]
        for worker in self.workers:
            mine = [e for e in self.events if e.op.conn == worker.index]
            if mine:
                lines.append(f"connection c{worker.index}:")
                lines += [f"  {event}" for event in mine]
        return "\n".join(lines)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.monitor.close()
