"""What a circuit becomes when Redis has no state for it (a Redis shared with a cache,
under ``maxmemory`` with an ``allkeys-*`` policy, evicted an operator's trip; or its hash held a
state that does not exist, which the scripts remove before answering UNKNOWN: see ``lua.load``).

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

What PostgreSQL returns is checked before it is used (``stored.check_record``): the application
role may write any state through ``guard.record_breaker_transitions``, and a row written before
the CHECK constraints of ``guard.breaker_state`` (or with them dropped) may hold a generation the
scripts cannot compute with, an opened-at of ``infinity`` or a state that does not exist. Such a
row is restored repaired (unknown state: ``open`` for a fresh cooldown; bad generation: the
caller's; bad opened-at: now) one generation on, and the repair is reported: ``Seed.note``
says what was wrong, SEED records it in the circuit's Redis event list and the breaker logs it
and hands it to its listeners as a transition (so the write-behind records it in PostgreSQL).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from guard import queries
from guard.breaker.state import State
from guard.breaker.stored import check_record
from guard.connection import open_connection


@dataclass(frozen=True, slots=True)
class RecordedState:
    """A circuit's state as something outside Redis last knew it."""

    state: State
    generation: int
    opened_at_ms: int = 0  # 0: unknown
    source: str = "postgresql"  # or "this process"
    # What was repaired in the recorded row (stored.check_record); empty when it was sound.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Seed:
    """What ``SEED`` writes for a missing circuit."""

    state: State
    generation: int
    opened_at_ms: int = 0  # 0: now, on Redis time (OPEN and FORCED_OPEN only)
    restored_from: RecordedState | None = None  # None: a new circuit
    note: str = ""  # "repaired: ..." when the recorded state had to be repaired

    @property
    def restored(self) -> bool:
        return self.restored_from is not None


def new_circuit(known_generation: int) -> Seed:
    return Seed(State.CLOSED, known_generation)


def seed_for(recorded: RecordedState | None, known_generation: int) -> Seed:
    if recorded is None:
        return new_circuit(known_generation)
    generation = max(recorded.generation, known_generation)
    note = ""
    if recorded.problems:
        # Restored repaired, one generation on: the repair is an event of its own.
        generation += 1
        note = "repaired: " + "; ".join(recorded.problems)
    state = recorded.state
    if state.manual or state is State.OPEN:
        return Seed(state, generation, recorded.opened_at_ms, recorded, note)
    if state is State.HALF_OPEN:
        return Seed(State.OPEN, generation, 0, recorded, note)
    return Seed(State.CLOSED, generation, 0, recorded, note)


class StateSource(Protocol):
    """Where a missing circuit's last state is read; raises on a failure to read."""

    def __call__(self, key: str) -> RecordedState | None: ...


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
                row = self._conn.execute(queries.BREAKER_RESTORE_STATE, (key,)).fetchone()
            except BaseException:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise
        if row is None:
            return None
        checked = check_record(*row)
        return RecordedState(
            checked.state, checked.generation, checked.opened_at_ms, problems=checked.problems
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
