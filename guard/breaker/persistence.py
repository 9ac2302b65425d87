"""Write-behind of shared breaker transitions to PostgreSQL, never on the hot path
(docs/breaker.md, "When Redis is down"): a listener queues them, a daemon thread writes them
idempotently per ``(key, generation)`` through ``guard.record_breaker_transitions``, and what
``close()`` cannot write is kept in Redis for the next writer. After any error the connection is
made afresh, so a multi-host URL finds a promoted primary by itself."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from guard import queries
from guard.backoff import exponential_delay
from guard.breaker.codec import RecordedState, check_record
from guard.breaker.listeners import BreakerEvent, EventKind
from guard.breaker.redis_store import REDIS_DOWN_ERRORS, make_client
from guard.connection import open_connection
from guard.errors import first_line

log = logging.getLogger("guard.breaker")


UNWRITTEN_KEY = "guard:breaker:unwritten"

Record = dict[str, Any]  # one transition as guard.record_breaker_transitions takes it


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def transition_record(event: BreakerEvent) -> Record:
    assert event.from_state is not None
    return {
        "key": event.key,
        "generation": event.generation,
        "from_state": event.from_state.label,
        "to_state": event.state.label,
        "reason": event.reason or "-",
        "failure_count": event.failure_count,
        "success_count": event.success_count,
        "actor": event.actor,
        "host": event.host,
        "pid": event.pid,
        "occurred_at": iso(event.occurred_at),
        "opened_at": iso(event.opened_at),
    }


def write_records(conn: psycopg.Connection[Any], records: Sequence[Mapping[str, Any]]) -> int:
    """Record transitions and states in the current transaction; how many events were new."""
    if not records:
        return 0
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(queries.RECORD_BREAKER_TRANSITIONS, (Jsonb(list(records)),)).fetchone()
    return int(row[0]) if row else 0


def _field(record: Mapping[str, Any]) -> str:
    return f"{record['key']} {record['generation']}"


def _kept_in_order(raw: Iterable[Any]) -> list[Record]:
    """The records of ``UNWRITTEN_KEY``, oldest first; an unreadable one is skipped."""
    kept = []
    for item in raw:
        try:
            record = json.loads(item)
            order = (datetime.fromisoformat(record["occurred_at"]), _field(record))
        except (ValueError, TypeError, KeyError):
            continue
        kept.append((order, record))
    kept.sort(key=lambda pair: pair[0])
    return [record for _, record in kept]


def describe_failure(error: BaseException) -> str:
    """One line saying what went wrong, for the log (no connection string, so no password)."""
    name = type(error).__name__
    if isinstance(error, psycopg.OperationalError | OSError):
        return f"PostgreSQL unreachable ({name})"
    detail = first_line(error)
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return (
            f"PostgreSQL refused breaker events: permission denied ({name}: {detail}); the "
            "role needs EXECUTE on guard.record_breaker_transitions (guard.apply_grants grants "
            "it to the application role)"
        )
    if isinstance(error, psycopg.errors.UndefinedFunction):
        return (
            f"PostgreSQL refused breaker events ({name}: {detail}); apply the Booking Guard "
            "migrations (guard db apply)"
        )
    return f"PostgreSQL refused breaker events ({name}: {detail})"


class PostgresWriteBehind:
    """Listener that persists shared transitions on a background thread."""

    def __init__(
        self,
        database_url: str | None,
        *,
        redis_url: str | None = None,
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
        self._pending: deque[Record] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._close_by = 0.0  # once closing: when to give up on what is left
        self._batch: list[Record] = []  # being written
        # Redis keeps what close() could not write; the thread first queues what is kept there.
        self._redis = (
            make_client(redis_url, connect_timeout=1, read_timeout=5) if redis_url else None
        )
        self._loading = self._redis is not None
        self._replayed: set[str] = set()  # fields of UNWRITTEN_KEY queued by this writer
        self._conn: psycopg.Connection[Any] | None = None
        self._outage = False
        self._thread = threading.Thread(
            target=self._run, name="guard-breaker-write-behind", daemon=True
        )
        self._thread.start()

    # The listener entry point: O(1), never blocks on PostgreSQL.
    def __call__(self, event: BreakerEvent) -> None:
        if event.kind is EventKind.TRANSITION and event.shared and event.from_state is not None:
            self.submit([event])

    def submit(self, events: Iterable[BreakerEvent]) -> None:
        first_drop = False
        records = [transition_record(event) for event in events]
        with self._cond:
            for record in records:
                if len(self._pending) >= self.max_pending:
                    # Bounded memory: the oldest go first; the newest carry the current state.
                    self._pending.popleft()
                    first_drop = first_drop or self.dropped == 0
                    self.dropped += 1
                self._pending.append(record)
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
            return len(self._pending) + len(self._batch)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._loading or self._pending or self._batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Drain the queue (retrying every ``min_retry_seconds`` up to ``timeout``) and stop;
        False if events were left unwritten."""
        with self._cond:
            self._closing = True
            self._close_by = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout=max(1.0, timeout) + self.connect_timeout)
        drained = not self._thread.is_alive() and self.pending == 0
        if not drained:
            with self._cond:  # a batch still being written is kept too (written at most once)
                left = [*self._batch, *self._pending]
            self._keep(left)
        if self._conn is not None:
            self._conn.close()
        if self._redis is not None:
            self._redis.close()
        return drained

    def _keep(self, records: list[Record]) -> None:
        if not records:
            return
        if self._redis is None:
            log.error("breaker write-behind stopped with %d events unwritten", len(records))
            return
        try:
            for start in range(0, len(records), 1000):
                chunk = records[start : start + 1000]
                self._redis.hset(UNWRITTEN_KEY, mapping={_field(r): json.dumps(r) for r in chunk})
        except REDIS_DOWN_ERRORS as error:
            log.error(
                "breaker write-behind stopped with %d events unwritten, lost: Redis did not "
                "keep them either (%s)",
                len(records),
                type(error).__name__,
            )
            return
        log.warning(
            "breaker write-behind stopped with %d events unwritten; kept in Redis (%s), the "
            "next registry started with it writes them",
            len(records),
            UNWRITTEN_KEY,
        )

    def _load_kept(self) -> None:
        """Queue, ahead of anything new, what writers closed before could not write."""
        assert self._redis is not None
        records: list[Record] = []
        try:
            records = _kept_in_order(self._redis.hvals(UNWRITTEN_KEY))
        except REDIS_DOWN_ERRORS as error:
            log.warning(
                "breaker write-behind: events kept in Redis by a registry closed before were "
                "not read (%s); they stay there for the next start",
                type(error).__name__,
            )
        if records:
            log.warning(
                "breaker write-behind: writing %d events a registry closed before kept in Redis",
                len(records),
            )
        with self._cond:
            self._pending.extendleft(reversed(records))
            self._replayed.update(_field(r) for r in records)
            self._loading = False
            self._cond.notify_all()

    def _take_batch(self) -> list[Record]:
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            count = min(len(self._pending), self.batch_size)
            self._batch = [self._pending.popleft() for _ in range(count)]
            return self._batch

    def _write(self, batch: list[Record]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = open_connection(
                self.database_url or "", connect_timeout=self.connect_timeout
            )
        with self._conn.transaction():
            write_records(self._conn, batch)

    def _wait_to_retry(self, delay: float) -> bool:
        """Wait out the backoff; False when closing and out of time."""
        with self._cond:
            closing = self._closing
            if closing:
                delay = min(delay, self.min_retry_seconds)
            retry_at = time.monotonic() + delay
            while self._closing is closing and (left := retry_at - time.monotonic()) > 0:
                self._cond.wait(left)
            return not self._closing or time.monotonic() < self._close_by

    def _run(self) -> None:
        failures = 0  # in a row: the wait after the n-th is exponential_delay(n, min, max)
        if self._redis is not None:
            self._load_kept()
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
                        "breaker write-behind: %s; %d events queued, retrying",
                        describe_failure(error),
                        len(batch),
                    )
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                with self._cond:
                    self._pending.extendleft(reversed(batch))
                    self._batch = []
                failures += 1
                delay = exponential_delay(failures, self.min_retry_seconds, self.max_retry_seconds)
                if not self._wait_to_retry(delay):
                    return
                continue
            if self._outage:
                self._outage = False
                log.warning("breaker write-behind: PostgreSQL accepts events again; written")
            failures = 0
            written = [f for r in batch if (f := _field(r)) in self._replayed]
            if written and self._redis is not None:
                # the kept events PostgreSQL now has leave Redis (a failure only rewrites them)
                with contextlib.suppress(*REDIS_DOWN_ERRORS):
                    self._redis.hdel(UNWRITTEN_KEY, *written)
                    self._replayed.difference_update(written)
            with self._cond:
                self.written += len(batch)
                self._batch = []
                self._cond.notify_all()


# Where a missing circuit's last state is read; raises on a failure to read.
StateSource = Callable[[str], RecordedState | None]


class PostgresStateSource:
    """Reads ``guard.breaker_restore_state(key)`` on one connection, re-made after an error."""

    def __init__(self, database_url: str | None, *, connect_timeout: int = 2) -> None:
        self.database_url = database_url
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def __call__(self, key: str) -> RecordedState | None:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = open_connection(
                        self.database_url or "",
                        connect_timeout=self.connect_timeout,
                        autocommit=True,
                    )
                row = self._conn.execute(queries.BREAKER_RESTORE_STATE, (key,)).fetchone()
            except BaseException:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise
        return None if row is None else check_record(*row)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
