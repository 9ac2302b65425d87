"""The one definition of a circuit's Redis hash ``guard:breaker:{KEY}`` (docs/breaker-protocol.md):
its field names, the values each may hold, and how a hash (or the memory store's same-shaped
circuit) is decoded. The scripts spell the same names (test_breaker_codec.py checks)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from guard.breaker.state import (
    MAX_COUNT,
    MAX_GENERATION,
    MAX_TIME_MS,
    SHARED_RULES,
    WINDOW_CODES,
    WINDOW_LIMITS,
    SharedRules,
    State,
)

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


STATE = "st"
GENERATION = "g"
FAILURES = "f"
SUCCESSES = "s"
OPENED_AT = "oa"
PROBE_UNTIL = "pu"
PROBE_SEQ = "ps"
CHANGED_AT = "ca"
OPEN_COOLDOWN = "oc"
LAST_FAILURE_AT = "lf"
CLOSED_AT = "cl"
REPAIR_PENDING = "rp"

# The rules stored with the circuit, in the order of ``SharedRules``.
RULE_FIELDS = ("cft", "cst", "ccd", "cwt", "cws", "cwm", "cfr", "csd", "csr", "ccg", "ccm")
# The failure-rate window's totals; its slots are ``SLOT_PREFIX`` + index.
WINDOW_FIELDS = ("we", "wn", "wf", "wsl", "wp")
SLOT_PREFIX = "w"
# The state fields a decision reads, ``load``'s order: the last four may be missing from a hash
# written by an earlier version (missing is 0).
STATE_FIELDS = (STATE, GENERATION, FAILURES, SUCCESSES, OPENED_AT, PROBE_UNTIL, PROBE_SEQ)
LATER_STATE_FIELDS = (OPEN_COOLDOWN, LAST_FAILURE_AT, CLOSED_AT, CHANGED_AT)

# (lowest, highest) of every field a decision reads; the window's size (``cws``) is bounded by
# its type (``WINDOW_LIMITS``). The window's rules and totals count only when ``cwt`` is not 0.
BOUNDS: dict[str, tuple[int, int]] = {
    STATE: (0, len(State) - 1),
    **dict.fromkeys((GENERATION, PROBE_SEQ, "we"), (0, MAX_GENERATION)),
    **dict.fromkeys((FAILURES, SUCCESSES, OPEN_COOLDOWN, "wn", "wf", "wsl"), (0, MAX_COUNT)),
    **dict.fromkeys(
        (OPENED_AT, PROBE_UNTIL, LAST_FAILURE_AT, CLOSED_AT, CHANGED_AT, "wp"), (0, MAX_TIME_MS)
    ),
    # the rules' (the growing cooldown's missing: no growth, as stored by an earlier version)
    **{name: rule.stored_bounds for name, rule in zip(RULE_FIELDS, SHARED_RULES, strict=True)},
    "ccm": (0, MAX_COUNT),  # the scripts take any cap a stored cooldown can hold
}

FIELDS = frozenset(
    [*STATE_FIELDS, *LATER_STATE_FIELDS, REPAIR_PENDING, *RULE_FIELDS, *WINDOW_FIELDS]
)

_WINDOW_TYPES = {code: name for name, code in WINDOW_CODES.items()}


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash's fields and values as text (a hash may hold any bytes: values are checked later)."""
    return {
        (k.decode(errors="replace") if isinstance(k, bytes) else str(k)): (
            v.decode(errors="replace") if isinstance(v, bytes) else str(v)
        )
        for k, v in raw.items()
    }


# ---------------------------------------------------------------------------- checking


def _checked(raw: Mapping[str, str], name: str, missing: str | None = None) -> int | None:
    """A field's value within its bounds, else None; ``missing``: what an absent field means."""
    lowest, highest = BOUNDS[name]
    return int_in(raw.get(name, missing), lowest, highest)


def check_hash(raw: Mapping[str, str], known_generation: int = 0) -> dict[str, int]:
    """A hash's fields as the scripts' ``load`` repairs them for a decision (the window's only
    when the stored rules, valid, have one)."""
    fields: dict[str, int] = {}
    if STATE in raw:
        known = int_in(known_generation, 0, MAX_GENERATION) or 0
        repaired = {STATE: int(State.OPEN), GENERATION: known}
        for name in (*STATE_FIELDS, *LATER_STATE_FIELDS):
            value = _checked(raw, name)
            fields[name] = repaired.get(name, 0) if value is None else value
    rules = stored_rules(raw)
    if rules is not None and rules.has_window:
        values = {name: _checked(raw, name, "0") for name in WINDOW_FIELDS}
        calls, failed, slow = values["wn"], values["wf"] or 0, values["wsl"] or 0
        # a window that cannot be used counts as empty
        usable = None not in values.values() and not (
            calls is None
            or failed > calls
            or slow > calls
            or (rules.window_type == "count" and calls > rules.window_size)
        )
        for name, value in values.items():
            fields[name] = (value or 0) if usable else 0
    return fields


# ---------------------------------------------------------------------------- rules


def rules_values(rules: SharedRules) -> tuple[str, ...]:
    """The rules as the hash stores them and the scripts take them (``RULE_FIELDS``' order)."""
    coded = rules._replace(window_type=str(WINDOW_CODES[rules.window_type]))
    return tuple(str(value) for value in coded)


def rules_from_values(values: Sequence[Any]) -> SharedRules | None:
    """``stored_rules`` of the stored values in ``RULE_FIELDS``' order."""
    return stored_rules(
        {
            name: value.decode("latin-1") if isinstance(value, bytes) else value
            for name, value in zip(RULE_FIELDS, values, strict=False)
        }
    )


def stored_rules(raw: Mapping[str, Any]) -> SharedRules | None:
    """The rules stored in a circuit's decoded hash; None when it has none, or not rules the
    breaker could have stored (the scripts drop those at the next decision). An empty value is
    a missing one; the window's fields count only with a window, the growth's missing are 0."""
    given = {name: str(raw[name]) for name in RULE_FIELDS if raw.get(name) not in (None, "")}
    if not given.keys() & set(RULE_FIELDS[:3]):
        return None
    window_type = _checked(given, "cwt", "0")
    numbers: dict[str, int | None] = dict.fromkeys(RULE_FIELDS[3:9], 0)
    for name in (*RULE_FIELDS[:3], *(RULE_FIELDS[4:9] if window_type else ()), "ccg", "ccm"):
        numbers[name] = _checked(given, name, "0" if name in ("ccg", "ccm") else None)
    if window_type:  # a time window's size has a lower bound than a count window's
        numbers["cws"] = int_in(given.get("cws"), 1, WINDOW_LIMITS[_WINDOW_TYPES[window_type]])
    if window_type is None or None in numbers.values():
        return None
    return SharedRules._make(
        _WINDOW_TYPES[window_type] if name == "cwt" else numbers[name] for name in RULE_FIELDS
    )


# ---------------------------------------------------------------------------- the window


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What a circuit's failure-rate window holds (calls, failed, slow)."""

    calls: int
    failures: int
    slow_calls: int


NO_WINDOW = WindowCounts(0, 0, 0)


def window_counts(raw: Mapping[str, str], rules: SharedRules | None, now_ms: int) -> WindowCounts:
    """The window as of ``now_ms`` (the store's clock): a time window's totals are recounted
    from its buckets, since the stored ones are as of its last recorded call."""
    if rules is None or not rules.has_window:
        return NO_WINDOW
    fields = check_hash(raw)  # a window it could not use counts as empty
    if rules.window_type == "count":
        return WindowCounts(fields.get("wn", 0), fields.get("wf", 0), fields.get("wsl", 0))
    epoch, oldest = fields.get("we", 0), now_ms // 1000 - rules.window_size
    calls = failures = slow = 0
    for index in range(rules.window_size):
        parts = raw.get(f"{SLOT_PREFIX}{index}", "").split(":")
        if len(parts) != 5 or not all(part.isascii() and part.isdigit() for part in parts):
            continue  # empty, a slot of an earlier count window, or not a bucket at all
        e, second, n, f, s = (int(part) for part in parts)
        if e == epoch and second > oldest:
            calls, failures, slow = calls + n, failures + f, slow + s
    return WindowCounts(calls, failures, slow)


# ---------------------------------------------------------------------------- a whole circuit


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """A circuit as the store has it (``snapshot()``), with this process's counters."""

    key: str
    state: State
    generation: int
    failure_count: int
    success_count: int
    opened_at: datetime | None
    changed_at: datetime | None
    # OPEN: until its cooldown ends (0 to the cooldown, whatever the clocks say); else None
    recovers_in_seconds: float | None
    rules: SharedRules | None
    source: str  # "redis", "memory" (in-memory breaker) or "local" (Redis unreachable)
    in_flight: int
    rejected_open: int
    rejected_bulkhead: int
    rejected_store_unavailable: int
    # The failure-rate window now (all 0 when the circuit has none; see SharedRules).
    window: WindowCounts = NO_WINDOW
    # The last failure counted and the last move to CLOSED (None: none since the circuit was
    # created, or restored after Redis lost it).
    last_failure_at: datetime | None = None
    closed_at: datetime | None = None
    # The cooldown of the present opening: the stored one, grown by failed probes when the
    # rules say so (None: the circuit has no rules yet).
    cooldown_seconds: float | None = None

    @classmethod
    def decode(
        cls,
        key: str,
        raw: Mapping[str, str],
        now_ms: int,
        source: str,
        *,
        known_generation: int = 0,
        cooldown_without_rules_ms: int | None = None,
        wall_offset_ms: int = 0,
        counters: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> Self:
        """``raw``, a decoded hash read at ``now_ms``, shown as the next decision would repair it.
        ``cooldown_without_rules_ms`` stands in for a circuit without rules (None: unknown);
        ``wall_offset_ms`` turns the store's clock into the wall clock."""
        fields = check_hash(raw, known_generation)
        rules = stored_rules(raw)
        state = State(fields.get(STATE, int(State.CLOSED)))
        grown = fields.get(OPEN_COOLDOWN, 0)
        cooldown = rules.open_cooldown_ms(grown) if rules is not None else None
        until = cooldown if cooldown is not None else cooldown_without_rules_ms
        recovers_in = None
        if state is State.OPEN and until is not None:
            recovers_in = min(until, max(0, fields.get(OPENED_AT, 0) + until - now_ms)) / 1000

        def at(name: str) -> datetime | None:
            ms = fields.get(name, 0)
            return datetime.fromtimestamp((ms + wall_offset_ms) / 1000, tz=UTC) if ms else None

        return cls(
            key,
            state,
            fields.get(GENERATION, 0),
            fields.get(FAILURES, 0),
            fields.get(SUCCESSES, 0),
            at(OPENED_AT) if state.rejects else None,
            at(CHANGED_AT),
            recovers_in,
            rules,
            source,
            *counters,
            window=window_counts(raw, rules, now_ms),
            last_failure_at=at(LAST_FAILURE_AT),
            closed_at=at(CLOSED_AT),
            cooldown_seconds=cooldown / 1000 if cooldown is not None else None,
        )


def seeded_hash(state: State, generation: int, opened_at_ms: int) -> dict[str, str]:
    """The hash ``SEED`` writes (shown when Redis evicts it again before it is read back)."""
    return {STATE: str(int(state)), GENERATION: str(generation), OPENED_AT: str(opened_at_ms)}
