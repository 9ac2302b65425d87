"""What a stored circuit may hold (bounds, repairs), and what a circuit missing from Redis
becomes: the state PostgreSQL recorded, else the one this process saw, else a new closed one.

The bounds are state.py's, the same in the scripts (``lua.py``) and in the CHECK constraints of
``guard.breaker_state``/``_events``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from guard import queries
from guard.breaker.state import MAX_GENERATION, MAX_TIME_MS, State
from guard.connection import open_connection

STATE_LABELS = frozenset(state.label for state in State)


def int_in(value: object, lowest: int, highest: int) -> int | None:
    """``value`` as an integer within [lowest, highest], read as Lua's ``tonumber`` reads it;
    else None (booleans, NaN, infinities and fractions too)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if lowest <= value <= highest else None


def shown(value: object) -> str:
    """A stored value as a repair report quotes it: short, printable ASCII only."""
    if value is None:
        return "missing"
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if len(text) > 24:
        text = text[:24] + "..."
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in ".+-") else "?" for ch in text)
    return f"'{safe}'"


@dataclass(frozen=True, slots=True)
class RecordedState:
    """A circuit's state as something outside Redis last knew it."""

    state: State
    generation: int  # 0: none usable (the caller's known generation applies)
    opened_at_ms: int = 0  # 0: unknown
    source: str = "postgresql"  # or "this process"
    problems: tuple[str, ...] = ()


def check_record(state: object, generation: object, opened_at_ms: object) -> RecordedState:
    """Check what ``guard.breaker_restore_state`` returned (``opened_at_ms`` a float: infinity)."""
    problems: list[str] = []
    if isinstance(state, str) and state in STATE_LABELS:
        checked_state = State.from_label(state)
    else:
        problems.append(f"state {shown(state)} is not a state")
        checked_state = State.OPEN
    checked_generation = int_in(generation, 1, MAX_GENERATION)
    if checked_generation is None:
        problems.append(f"generation {shown(generation)} out of range 1 to {MAX_GENERATION}")
    opened = 0
    if opened_at_ms is not None:
        value = opened_at_ms
        if isinstance(value, float) and math.isfinite(value):
            value = round(value)
        checked_opened = int_in(value, 1, MAX_TIME_MS)
        if checked_opened is None:
            problems.append(f"opened_at {shown(opened_at_ms)} ms out of range")
        else:
            opened = checked_opened
    return RecordedState(checked_state, checked_generation or 0, opened, problems=tuple(problems))


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
