"""What a circuit becomes when Redis has no state for it (a Redis shared with a cache,
under ``maxmemory`` with an ``allkeys-*`` policy, evicted an operator's trip).

Redis is the live state, PostgreSQL the record: every shared transition and every manual
action is written to ``guard.breaker_state``. When a decision finds the circuit missing
(``lua.UNKNOWN_CODE``), the breaker asks ``seed_for`` what to re-create, and ``SEED`` writes it
only if the circuit is still missing, so processes restoring at the same time agree:

* a state PostgreSQL recorded: manual states (``forced_open``, ``forced_closed``,
  ``disabled``) exactly, ``open`` with its opened-at (the cooldown goes on), ``half_open`` as
  ``open`` for a fresh cooldown (its probe is lost, so the dependency is not trusted yet),
  ``closed`` as closed. Failure counts are lost: Redis alone held them.
* nothing recorded, but this process saw the circuit (PostgreSQL unreachable, or a breaker
  without a write-behind): the state this process last saw, under the same rules.
* neither: a new circuit, CLOSED with the generation the caller knew (what a missing circuit
  always was).

The generation is never lowered (the highest of PostgreSQL's and the caller's), so outcomes of
calls admitted before the loss are still matched by generation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg

from guard.breaker.state import State
from guard.db.connection import open_connection

RESTORE_QUERY = "SELECT state, generation, opened_at FROM guard.breaker_restore_state(%s)"


@dataclass(frozen=True, slots=True)
class RecordedState:
    """A circuit's state as something outside Redis last knew it."""

    state: State
    generation: int
    opened_at_ms: int = 0  # 0: unknown
    source: str = "postgresql"  # or "this process"


@dataclass(frozen=True, slots=True)
class Seed:
    """What ``SEED`` writes for a missing circuit."""

    state: State
    generation: int
    opened_at_ms: int = 0  # 0: now, on Redis time (OPEN and FORCED_OPEN only)
    restored_from: RecordedState | None = None  # None: a new circuit

    @property
    def restored(self) -> bool:
        return self.restored_from is not None


def new_circuit(known_generation: int) -> Seed:
    return Seed(State.CLOSED, known_generation)


def seed_for(recorded: RecordedState | None, known_generation: int) -> Seed:
    if recorded is None:
        return new_circuit(known_generation)
    generation = max(recorded.generation, known_generation)
    state = recorded.state
    if state.manual or state is State.OPEN:
        return Seed(state, generation, recorded.opened_at_ms, recorded)
    if state is State.HALF_OPEN:
        return Seed(State.OPEN, generation, 0, recorded)
    return Seed(State.CLOSED, generation, 0, recorded)


class StateSource(Protocol):
    """Where a missing circuit's last state is read; raises on a failure to read."""

    def __call__(self, key: str) -> RecordedState | None: ...


def _epoch_ms(value: datetime | None) -> int:
    return round(value.timestamp() * 1000) if value is not None else 0


class PostgresStateSource:
    """Reads ``guard.breaker_restore_state(key)`` (SECURITY DEFINER, granted to the application
    role, which may not read the breaker tables). Asked only when Redis lacks a circuit, never
    on the hot path; one connection, kept and re-made after an error."""

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
                row = self._conn.execute(RESTORE_QUERY, (key,)).fetchone()
            except BaseException:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise
        if row is None:
            return None
        state, generation, opened_at = row
        return RecordedState(State.from_label(state), int(generation), _epoch_ms(opened_at))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
