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

The safe values: an unknown state becomes ``open`` with a fresh cooldown (the dependency is not
trusted until a probe succeeds, as a restored ``half_open`` is); a bad generation is replaced by
the highest valid one known (never lowered below it); bad counts become 0; a bad opened-at
becomes "now"; bad rules are dropped (the caller's own apply, first writer wins); a bad window is
emptied. Redis repairs itself in the scripts and records the repair as a transition (reason
``repaired: ...``); these functions do the same for what Python reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from guard.breaker.state import MAX_COUNT_WINDOW, MAX_TIME_WINDOW_SECONDS, State

MAX_GENERATION = 10**12
MAX_COUNT = 2**31 - 1
MAX_TIME_MS = 10**13
MAX_MINIMUM_CALLS = 1_000_000
MAX_SLOW_CALL_MS = 86_400_000

STATE_LABELS = frozenset(state.label for state in State)

# Rule fields of the hash: (name, lowest, highest); the window's only count when cwt is not 0.
RULE_BOUNDS: tuple[tuple[str, int, int], ...] = (
    ("cft", 1, MAX_COUNT),
    ("cst", 1, MAX_COUNT),
    ("ccd", 1, MAX_COUNT),
    ("cwt", 0, 2),
)
WINDOW_RULE_BOUNDS: tuple[tuple[str, int, int], ...] = (
    ("cwm", 1, MAX_MINIMUM_CALLS),
    ("cfr", 0, 100),
    ("csd", 0, MAX_SLOW_CALL_MS),
    ("csr", 0, 100),
)
STATE_BOUNDS: tuple[tuple[str, int, int], ...] = (
    ("st", 0, len(State) - 1),
    ("g", 0, MAX_GENERATION),
    ("f", 0, MAX_COUNT),
    ("s", 0, MAX_COUNT),
    ("oa", 0, MAX_TIME_MS),
    ("pu", 0, MAX_TIME_MS),
    ("ps", 0, MAX_GENERATION),
)
WINDOW_STATE_BOUNDS: tuple[tuple[str, int, int], ...] = (
    ("we", 0, MAX_GENERATION),
    ("wn", 0, MAX_COUNT),
    ("wf", 0, MAX_COUNT),
    ("wsl", 0, MAX_COUNT),
    ("wp", 0, MAX_TIME_MS),
)


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
class CheckedHash:
    """A circuit's Redis hash with every field it uses checked: ``fields`` holds the values the
    breaker decides with (repaired where needed), ``problems`` what was repaired (empty when the
    hash was sound), ``rules_valid`` whether its stored rules may be used."""

    fields: dict[str, int]
    problems: tuple[str, ...]
    rules_valid: bool


def check_hash(raw: Mapping[str, str], known_generation: int = 0) -> CheckedHash:
    """The checks of the scripts' ``load`` on a decoded hash (``lua.py``), for what Python shows
    (`guard breaker list/show`, ``snapshot()``). A hash without a state (``st``) has nothing to
    check but its rules."""
    problems: list[str] = []
    fields: dict[str, int] = {}
    if "st" in raw:
        for name, lowest, highest in STATE_BOUNDS:
            value = int_in(raw.get(name), lowest, highest)
            if value is None:
                problems.append(f"{name}={shown(raw.get(name))}")
                value = {"st": int(State.OPEN), "g": _generation(known_generation)}.get(name, 0)
            fields[name] = value
        fields["ca"] = int_in(raw.get("ca"), 0, MAX_TIME_MS) or 0
    rules_valid = _rules_valid(raw, problems)
    if rules_valid and (int_in(raw.get("cwt"), 0, 2) or 0):
        window_type = int_in(raw.get("cwt"), 0, 2)
        size = int_in(raw.get("cws"), 1, _window_limit(window_type)) or 1
        values = {name: int_in(raw.get(name, "0"), lo, hi) for name, lo, hi in WINDOW_STATE_BOUNDS}
        calls = values["wn"]
        bad = [name for name, value in values.items() if value is None]
        if (
            not bad
            and calls is not None
            and (
                (values["wf"] or 0) > calls
                or (values["wsl"] or 0) > calls
                or (window_type == 1 and calls > size)
            )
        ):
            bad = ["wn"]
        for name in bad:
            problems.append(f"{name}={shown(raw.get(name))}")
        for name, value in values.items():
            fields[name] = 0 if bad else (value or 0)
    return CheckedHash(fields, tuple(problems), rules_valid)


def _generation(known: int) -> int:
    return int_in(known, 0, MAX_GENERATION) or 0


def _window_limit(window_type: int | None) -> int:
    return MAX_COUNT_WINDOW if window_type == 1 else MAX_TIME_WINDOW_SECONDS


def _rules_valid(raw: Mapping[str, str], problems: list[str]) -> bool:
    """Whether the stored rules may be used: the three thresholds all present (a circuit
    without them has no rules yet) and every rule field within its bounds."""
    present = [raw.get(name) not in (None, "") for name in ("cft", "cst", "ccd")]
    if not any(present):
        return False
    bad = [
        name
        for name, lowest, highest in RULE_BOUNDS
        if int_in(raw.get(name, "0" if name == "cwt" else None), lowest, highest) is None
    ]
    window_type = int_in(raw.get("cwt", "0"), 0, 2)
    if window_type:
        if int_in(raw.get("cws"), 1, _window_limit(window_type)) is None:
            bad.append("cws")
        bad += [
            name
            for name, lowest, highest in WINDOW_RULE_BOUNDS
            if int_in(raw.get(name), lowest, highest) is None
        ]
    problems += [f"{name}={shown(raw.get(name))}" for name in bad]
    return not bad


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
