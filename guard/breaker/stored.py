"""What a stored circuit may hold, and how a stored value outside it is repaired.

A circuit's state lives in two stores nobody but the breaker should write, yet others can: the
Redis hash ``guard:breaker:{KEY}`` (anything with access to that Redis) and the row of
``guard.breaker_state`` (the application role writes it through
``guard.record_breaker_transitions``). A value read from either is used only when it is an
integer within these bounds; anything else (text, empty, NaN, infinity, a fraction, a negative or
huge number, a state code or name that does not exist) is repaired to a safe value and reported,
never raised into the application's guarded call or an operator's command.

The bounds come from the scripts: Lua computes in doubles and writes a number back with
``%.14g``, so an integer of 1e14 or more comes back as ``1e+14``, which no reader parses (that
is how a generation of 9.2e18 once broke every call of a circuit). Each bound leaves room below
that: a generation of 10^12 is a transition per millisecond for thirty years; times are epoch
milliseconds up to the year 2286; counts fit the ``integer`` columns of ``guard.breaker_state``.
The same numbers are written into the scripts (``lua.py``) and into the CHECK constraints of
``guard.breaker_state`` and ``guard.breaker_events`` (``sql/constraints/guard.breaker_*``).

The safe values: an unknown state becomes, in Redis, the state PostgreSQL recorded (restored
as after an eviction), and in PostgreSQL ``open`` with a fresh cooldown (the dependency is not
trusted until a probe succeeds, as a restored ``half_open`` is); a bad generation is replaced by
the highest valid one known (never lowered below it); bad counts become 0; a bad opened-at
becomes "now"; bad rules are dropped (the caller's own apply, first writer wins); a bad window is
emptied. Redis repairs itself in the scripts and records the repair as a transition (reason
``repaired: ...``); these functions do the same for what Python reads (the hash's fields and
their bounds are ``codec.py``'s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guard.breaker.state import State

MAX_GENERATION = 10**12
MAX_COUNT = 2**31 - 1
MAX_TIME_MS = 10**13
MAX_MINIMUM_CALLS = 1_000_000
MAX_SLOW_CALL_MS = 86_400_000

STATE_LABELS = frozenset(state.label for state in State)


def int_in(value: object, lowest: int, highest: int) -> int | None:
    """``value`` as an integer if it is one within [lowest, highest] (an int, or text of a
    decimal integer or of a float with an integral value, as Lua's ``tonumber`` reads it); else
    None. Booleans, NaN, infinities and fractions are None."""
    if isinstance(value, bool):
        return None
    number: float | int
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str | bytes):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
    else:
        return None
    if isinstance(number, float):
        if not math.isfinite(number) or not number.is_integer():
            return None
        number = int(number)
    return number if lowest <= number <= highest else None


def shown(value: object) -> str:
    """A stored value as a repair report quotes it: short, printable ASCII only (a hash may
    hold any bytes, and the report goes to logs, a terminal and PostgreSQL)."""
    if value is None:
        return "missing"
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if len(text) > 24:
        text = text[:24] + "..."
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in ".+-") else "?" for ch in text)
    return f"'{safe}'"


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """A ``guard.breaker_state`` row as the breaker may use it, and what was repaired."""

    state: State
    generation: int  # 0: none usable (the caller's known generation applies)
    opened_at_ms: int  # 0: unknown (now)
    problems: tuple[str, ...]


def check_record(state: object, generation: object, opened_at_ms: object) -> CheckedRecord:
    """Check what ``guard.breaker_restore_state`` returned (``opened_at_ms``: the epoch in ms
    as a float, so that ``infinity`` and dates past year 9999 arrive as numbers)."""
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
    return CheckedRecord(checked_state, checked_generation or 0, opened, tuple(problems))
