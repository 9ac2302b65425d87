"""Write-behind of breaker transitions to PostgreSQL (``guard.breaker_events`` and
``guard.breaker_state``), never on the hot path.

``PostgresWriteBehind`` is a listener: it only appends shared transitions to an in-memory queue
(microseconds) and a daemon thread writes them in batches. Writes are idempotent per
``(key, generation)``: events use ``ON CONFLICT DO NOTHING`` on the unique constraint and the
state row only moves forward in generation, so a retried batch or two writers never duplicate
or regress anything. While PostgreSQL is unreachable the batch stays queued and is retried with
backoff (logged once per outage); up to ``max_pending`` events are kept (beyond that the oldest
are dropped, counted in ``dropped`` and logged once), and ``close()`` waits for the queue to
drain.

Per-process transitions decided during a Redis outage (``shared=False``) are not written: their
generations are local to one process and would collide with the shared ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from guard.breaker.listeners import BreakerEvent, EventKind

log = logging.getLogger("guard.breaker")

INSERT_EVENT = """
INSERT INTO guard.breaker_events
    (key, generation, from_state, to_state, reason, failure_count, success_count,
     actor, host, pid, occurred_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT breaker_events_key_generation_key DO NOTHING
"""

UPSERT_STATE = """
INSERT INTO guard.breaker_state
    (key, state, generation, failure_count, success_count, opened_at, changed_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (key) DO UPDATE SET
    state = EXCLUDED.state,
    generation = EXCLUDED.generation,
    failure_count = EXCLUDED.failure_count,
    success_count = EXCLUDED.success_count,
    opened_at = EXCLUDED.opened_at,
    changed_at = EXCLUDED.changed_at,
    updated_at = now()
WHERE guard.breaker_state.generation < EXCLUDED.generation
"""


def _event_row(event: BreakerEvent) -> tuple[Any, ...]:
    assert event.from_state is not None
    return (
        event.key,
        event.generation,
        event.from_state.label,
        event.state.label,
        event.reason or "-",
        event.failure_count,
        event.success_count,
        event.actor,
        event.host,
        event.pid,
        event.occurred_at,
    )


def _state_row(event: BreakerEvent) -> tuple[Any, ...]:
    return (
        event.key,
        event.state.label,
        event.generation,
        event.failure_count,
        event.success_count,
        event.opened_at,
        event.occurred_at,
    )


def write_transitions(conn: psycopg.Connection[Any], events: Sequence[BreakerEvent]) -> None:
    """Write events and the resulting states in the connection's current transaction."""
    if not events:
        return
    with conn.cursor() as cur:
        cur.executemany(INSERT_EVENT, [_event_row(event) for event in events])
        latest: dict[str, BreakerEvent] = {}
        for event in events:
            current = latest.get(event.key)
            if current is None or event.generation > current.generation:
                latest[event.key] = event
        cur.executemany(UPSERT_STATE, [_state_row(event) for event in latest.values()])


def persists(event: BreakerEvent) -> bool:
    return event.kind is EventKind.TRANSITION and event.shared and event.from_state is not None


class PostgresWriteBehind:
    """Listener that persists shared transitions on a background thread."""

    def __init__(
        self,
        database_url: str | None,
        *,
        max_pending: int = 100_000,
        batch_size: int = 500,
        min_retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
        connect_timeout: int = 5,
    ) -> None:
        self.database_url = database_url
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.min_retry_seconds = min_retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.connect_timeout = connect_timeout
        self.dropped = 0
        self.written = 0
        self._pending: deque[BreakerEvent] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._in_flight = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._outage = False
        self._thread = threading.Thread(
            target=self._run, name="guard-breaker-write-behind", daemon=True
        )
        self._thread.start()

    # The listener entry point: O(1), never blocks on PostgreSQL.
    def __call__(self, event: BreakerEvent) -> None:
        if persists(event):
            self.submit([event])

    def submit(self, events: Iterable[BreakerEvent]) -> None:
        first_drop = False
        with self._cond:
            for event in events:
                if len(self._pending) >= self.max_pending:
                    # Bounded memory: the oldest go first; the newest carry the current state.
                    self._pending.popleft()
                    first_drop = first_drop or self.dropped == 0
                    self.dropped += 1
                self._pending.append(event)
            self._cond.notify()
        if first_drop:
            log.error(
                "breaker write-behind queue full (%d events); dropping the oldest events "
                "until PostgreSQL is back (see PostgresWriteBehind.dropped)",
                self.max_pending,
            )

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Drain the queue (up to ``timeout``) and stop; False if events were left unwritten."""
        drained = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=max(1.0, timeout))
        if not drained:
            log.error("breaker write-behind stopped with %d events unwritten", self.pending)
        if self._conn is not None:
            self._conn.close()
        return drained

    def _take_batch(self) -> list[BreakerEvent]:
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            batch: list[BreakerEvent] = []
            while self._pending and len(batch) < self.batch_size:
                batch.append(self._pending.popleft())
            self._in_flight = len(batch)
            return batch

    def _requeue(self, batch: list[BreakerEvent]) -> None:
        with self._cond:
            self._pending.extendleft(reversed(batch))
            self._in_flight = 0

    def _write(self, batch: list[BreakerEvent]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.database_url or "", connect_timeout=self.connect_timeout
            )
        with self._conn.transaction():
            write_transitions(self._conn, batch)

    def _run(self) -> None:
        delay = self.min_retry_seconds
        while True:
            batch = self._take_batch()
            if not batch:
                return  # closing and nothing left
            try:
                self._write(batch)
            except (psycopg.Error, OSError) as error:
                if not self._outage:
                    self._outage = True
                    log.warning(
                        "PostgreSQL unreachable for breaker events (%s); %d queued, retrying",
                        type(error).__name__,
                        len(batch),
                    )
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                self._requeue(batch)
                retry_at = time.monotonic() + delay
                with self._cond:
                    # New events wake the condition too; keep waiting out the backoff.
                    while not self._closing and (left := retry_at - time.monotonic()) > 0:
                        self._cond.wait(left)
                    if self._closing:
                        return
                delay = min(delay * 2, self.max_retry_seconds)
                continue
            if self._outage:
                self._outage = False
                log.warning("PostgreSQL reachable again; breaker events written")
            delay = self.min_retry_seconds
            with self._cond:
                self.written += len(batch)
                self._in_flight = 0
                self._cond.notify_all()
