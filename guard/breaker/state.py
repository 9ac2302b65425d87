"""Circuit states (codes shared with the scripts, labels with PostgreSQL), rules, replies, and
what a guarded call raises when the breaker, not the dependency, says no (or gives up)."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class State(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2
    FORCED_OPEN = 3
    FORCED_CLOSED = 4
    DISABLED = 5

    @property
    def label(self) -> str:  # as stored in PostgreSQL: ``half_open``, ``forced_open`` …
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def from_label(cls, label: str) -> State:
        return cls[label.upper()]

    @property
    def rejects(self) -> bool:
        return self in (State.OPEN, State.FORCED_OPEN)

    @property
    def manual(self) -> bool:  # an operator's: automatic transitions never leave them
        return self in (State.FORCED_OPEN, State.FORCED_CLOSED, State.DISABLED)


class Outcome(enum.IntEnum):
    FAILURE = 0
    SUCCESS = 1
    # Neither success nor failure (a business error such as "slot already taken", or a
    # cancelled call): counts nothing, but hands back a HALF_OPEN probe lease at once.
    IGNORED = 2


class Action(enum.StrEnum):
    FORCE_OPEN = "force_open"
    FORCE_CLOSE = "force_close"
    DISABLE = "disable"
    RESET = "reset"


ACTION_TARGET: dict[Action, State] = {
    Action.FORCE_OPEN: State.FORCED_OPEN,
    Action.FORCE_CLOSE: State.FORCED_CLOSED,
    Action.DISABLE: State.DISABLED,
    Action.RESET: State.CLOSED,
}

# A circuit key becomes part of a Redis hash tag ``{key}``, so braces would break slot routing.
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-/]{1,200}$")


def validate_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise ValueError(f"invalid circuit key {key!r}: use 1-200 characters from [A-Za-z0-9_.:-/]")
    return key


STORE_UNREACHABLE_MODES = ("local", "closed", "open")

# The bounds of every stored value. Lua computes in doubles and writes numbers back with
# ``%.14g``: an integer of 1e14 or more comes back as ``1e+14``, which no reader parses, so every
# bound stays below that.
MAX_GENERATION = 10**12
MAX_COUNT = 2**31 - 1
MAX_TIME_MS = 10**13
MAX_MINIMUM_CALLS = 1_000_000
MAX_SLOW_CALL_MS = 86_400_000

# Codes stored in Redis (field ``cwt``): 0 = no window.
WINDOW_TYPES = ("count", "time")
WINDOW_CODES = {"": 0, "count": 1, "time": 2}
# Memory is one hash field per call slot (count) or per second (time), and a decision may sweep
# up to a whole time window of buckets, so both sizes are bounded.
MAX_COUNT_WINDOW = 1000
MAX_TIME_WINDOW_SECONDS = 600
WINDOW_LIMITS = {"count": MAX_COUNT_WINDOW, "time": MAX_TIME_WINDOW_SECONDS}

# A stored cooldown is at most 2^31 - 1 ms (MAX_COUNT): about 24 days.
MAX_COOLDOWN_SECONDS = 2_000_000

# The probe lease of a circuit whose calls have no timeout: a crashed probe frees the circuit for
# the next one after this long, while a probe that is only slow may still be running (its late
# outcome is then ignored). 11 s: the lease the former default timeout of 10 s gave.
PROBE_LEASE_WITHOUT_TIMEOUT_MS = 11_000

# The growth factor is stored in whole percent (200 = x2) so that Redis and Python compute alike.
MAX_COOLDOWN_GROWTH = 10


class SharedRules(NamedTuple):
    """The part of a circuit's configuration stored with the circuit itself (rates in whole
    percent; a window's or the growth's fields all zero when the circuit has none)."""

    failure_threshold: int
    success_threshold: int
    cooldown_ms: int
    window_type: str = ""
    window_size: int = 0
    minimum_calls: int = 0
    failure_rate_threshold: int = 0
    slow_call_ms: int = 0
    slow_call_rate_threshold: int = 0
    cooldown_growth_percent: int = 0
    max_cooldown_ms: int = 0

    @property
    def has_window(self) -> bool:
        return self.window_type != ""

    @property
    def window_rules(self) -> tuple[str | int, ...]:
        """The rules of the failure-rate window (new ones start an empty window)."""
        return self[3:9]

    @property
    def has_growth(self) -> bool:
        return self.cooldown_growth_percent > 0

    def open_cooldown_ms(self, grown_ms: int) -> int:
        """The present opening's cooldown: ``grown_ms`` (what failed probes made of it, 0 before
        any) within the cooldown and the cap (the scripts' ``cooldown``)."""
        if not self.cooldown_growth_percent or not grown_ms:
            return self.cooldown_ms
        return max(self.cooldown_ms, min(grown_ms, self.max_cooldown_ms))

    def grown_cooldown_ms(self, grown_ms: int) -> int:
        """The cooldown after one more failed probe; 0 without growth (the scripts' ``grown``)."""
        if not self.cooldown_growth_percent:
            return 0
        longer = self.open_cooldown_ms(grown_ms) * self.cooldown_growth_percent // 100
        return max(self.cooldown_ms, min(longer, self.max_cooldown_ms))

    def growth_text(self) -> str:
        """``cooldown x2 up to 600s``; "" without growth."""
        if not self.has_growth:
            return ""
        factor = self.cooldown_growth_percent / 100
        return f"cooldown x{factor:g} up to {self.max_cooldown_ms / 1000:g}s"

    @property
    def effective_minimum_calls(self) -> int:
        """A count window never holds more than its size: its minimum is capped by it."""
        if self.window_type == "count":
            return min(self.minimum_calls, self.window_size)
        return self.minimum_calls

    def window_text(self) -> str:
        """``50% failed or 80% slower than 2s of the last 100 calls (min 20)``; "" without."""
        if not self.has_window:
            return ""
        rates = []
        if self.failure_rate_threshold:
            rates.append(f"{self.failure_rate_threshold}% failed")
        if self.slow_call_rate_threshold:
            rates.append(
                f"{self.slow_call_rate_threshold}% slower than {self.slow_call_ms / 1000:g}s"
            )
        span = (
            f"{self.window_size} calls" if self.window_type == "count" else f"{self.window_size}s"
        )
        return f"{' or '.join(rates)} of the last {span} (min {self.effective_minimum_calls})"

    def config_values(self) -> dict[str, Any]:
        """The rules as ``BreakerConfig``'s fields: None where a rule is off (every one of
        ``SharedRules(0, 0, 0)``, which stands for none)."""
        on = {"": True, "window": self.has_window, "growth": self.has_growth}
        stored: tuple[Any, ...] = self
        return {
            rule.name: (value / rule.scale if rule.scale > 1 else value) or None
            if on[rule.part]
            else None
            for rule, value in zip(SHARED_RULES, stored, strict=True)
        }

    def text(self) -> str:
        """``3/2/30s`` (failures/successes/cooldown), then the window's and growth's rules."""
        text = f"{self.failure_threshold}/{self.success_threshold}/{self.cooldown_ms / 1000:g}s"
        return ", ".join(part for part in (text, self.window_text(), self.growth_text()) if part)


def configure_reason(previous: SharedRules | None, rules: SharedRules) -> str:
    """The reason recorded for a change of rules: ``configure: 3/2/30s -> 5/2/60s``."""
    return f"configure: {previous.text() if previous is not None else 'none'} -> {rules.text()}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of ``BreakerConfig``: the values it takes, and how it is stored with the circuit
    (``SharedRules``, in the same order) unless it is this process's own."""

    name: str  # the BreakerConfig field
    lowest: int | float  # an int: the rule takes whole numbers
    highest: int | float
    scale: int = 1  # stored as round(value * scale): milliseconds, whole percent
    part: str = ""  # "window", "growth" (stored as 0 while off) or "local" (not stored)
    optional: bool = False  # None: off
    setting: bool = False  # set by the guard.settings row ``breaker_<name>``
    what: str = ""  # what an error message calls a value
    choices: tuple[str, ...] = ()  # one of these, stored as its code (``WINDOW_CODES``)

    @property
    def whole(self) -> bool:
        return isinstance(self.lowest, int)

    @property
    def stored_bounds(self) -> tuple[int, int]:
        lowest = 0 if self.optional or self.choices else round(self.lowest * self.scale)
        return lowest, round(self.highest * self.scale)

    def stored(self, value: Any) -> Any:
        """``value`` as ``SharedRules`` holds it; None (off) as 0, or "" for a choice."""
        return (value or "") if self.choices else round((value or 0) * self.scale)

    def check(self, value: Any, lowest: float | None = None, lowest_text: str = "") -> None:
        if value is None and self.optional:
            return
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}")
            return
        lowest = self.lowest if lowest is None else lowest
        kind = int if self.whole else (int, float)
        valid = isinstance(value, kind) and not isinstance(value, bool)
        if not valid or not lowest <= value <= self.highest:
            what = self.what or ("a whole number " if self.whole else "")
            raise ValueError(
                f"{self.name} must be {what}from {lowest_text or lowest} to {self.highest}"
            )


PERCENT = "a whole percent "
# Every rule of BreakerConfig that has bounds: BreakerConfig, the stored rules (codec.py), the
# guard.settings rows and `guard breaker configure`'s options all take them from here.
RULES = (
    Rule("failure_threshold", 1, MAX_COUNT, setting=True),
    Rule("success_threshold", 1, MAX_COUNT, setting=True),
    Rule("cooldown_seconds", 0.001, MAX_COUNT / 1000, 1000, setting=True),
    Rule("window_type", 0, len(WINDOW_TYPES), part="window", choices=WINDOW_TYPES),
    Rule("window_size", 1, MAX_COUNT_WINDOW, part="window"),  # a time window's: fewer
    Rule("minimum_calls", 1, MAX_MINIMUM_CALLS, part="window"),
    Rule("failure_rate_threshold", 1, 100, 1, "window", optional=True, what=PERCENT),
    Rule("slow_call_seconds", 0.001, MAX_SLOW_CALL_MS // 1000, 1000, "window", optional=True),
    Rule("slow_call_rate_threshold", 1, 100, 1, "window", optional=True, what=PERCENT),
    Rule("cooldown_growth_factor", 1.01, MAX_COOLDOWN_GROWTH, 100, "growth", optional=True),
    Rule("max_cooldown_seconds", 0.001, MAX_COOLDOWN_SECONDS, 1000, "growth", optional=True),
    Rule(
        "call_timeout_seconds", 0.001, MAX_COUNT / 1000, part="local", optional=True, setting=True
    ),
    Rule("local_state_ttl_seconds", 0.0, MAX_COUNT / 1000, part="local"),
    Rule("max_concurrent_calls", 1, MAX_COUNT, part="local"),
)
RULE = {rule.name: rule for rule in RULES}
SHARED_RULES = tuple(rule for rule in RULES if rule.part != "local")


def _never(_: object) -> bool:
    return False


def _any_exception(_: BaseException) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Rules of one circuit (docs/breaker.md, "Application API"). Defaults match the
    ``guard.settings`` rows but for the call timeout (none here). The thresholds, cooldown, window
    and growth are stored with the circuit by its first writer (``shared_rules``)."""

    failure_threshold: int = 3
    cooldown_seconds: float = 30.0
    success_threshold: int = 2
    # None: a sync call runs on the caller's thread. A timeout is opt-in because a sync call
    # with one runs on the circuit's worker thread, a hand-off dearer than an in-memory
    # breaker's whole call (results/bench/breaker.txt, the "sync timeout" rows).
    call_timeout_seconds: float | None = None
    local_state_ttl_seconds: float = 1.0
    max_concurrent_calls: int = 32
    when_store_unreachable: str = "local"
    raise_open_on_trip: bool = False
    # Exception classification: ignored first, then failure; anything else counts as success
    # (the dependency answered; the error belongs to the caller).
    ignored_exceptions: tuple[type[BaseException], ...] = ()
    is_ignored_exception: Callable[[BaseException], bool] = field(default=_never)
    failure_exceptions: tuple[type[BaseException], ...] = (Exception,)
    is_failure_exception: Callable[[BaseException], bool] = field(default=_any_exception)
    # Result classification for dependencies that report errors by value.
    is_failure_result: Callable[[Any], bool] = field(default=_never)
    is_ignored_result: Callable[[Any], bool] = field(default=_never)
    # The failure-rate window (off unless a rate threshold is set; docs/breaker.md).
    failure_rate_threshold: int | None = None
    slow_call_seconds: float | None = None
    slow_call_rate_threshold: int | None = None
    window_type: str = "count"
    window_size: int = 100
    minimum_calls: int = 100
    # The growing cooldown (off unless a factor is set; docs/breaker.md).
    cooldown_growth_factor: float | None = None
    max_cooldown_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.when_store_unreachable not in STORE_UNREACHABLE_MODES:
            raise ValueError(
                f"when_store_unreachable must be one of {', '.join(STORE_UNREACHABLE_MODES)}"
            )
        if (self.slow_call_seconds is None) != (self.slow_call_rate_threshold is None):
            raise ValueError(
                "slow_call_seconds and slow_call_rate_threshold go together (a call slower than"
                " slow_call_seconds is slow; the circuit opens at slow_call_rate_threshold %)"
            )
        if self.cooldown_growth_factor is None and self.max_cooldown_seconds is not None:
            raise ValueError("max_cooldown_seconds goes with cooldown_growth_factor")
        if self.cooldown_growth_factor is not None and self.max_cooldown_seconds is None:
            raise ValueError("cooldown_growth_factor needs max_cooldown_seconds (the cap)")
        for rule in RULES:
            value = getattr(self, rule.name)
            if rule.name == "max_cooldown_seconds":
                rule.check(
                    value, self.cooldown_seconds, f"the cooldown ({self.cooldown_seconds:g})"
                )
            elif rule.name != "window_size":
                rule.check(value)
            elif isinstance(value, bool) or not 1 <= value <= WINDOW_LIMITS[self.window_type]:
                unit = "calls" if self.window_type == "count" else "seconds"
                raise ValueError(
                    f"window_size of a {self.window_type} window must be 1 to"
                    f" {WINDOW_LIMITS[self.window_type]} {unit}"
                )

    @property
    def shared_rules(self) -> SharedRules:
        """The values stored with the circuit (what every process must agree on)."""
        window = (self.failure_rate_threshold, self.slow_call_rate_threshold) != (None, None)
        on = {"": True, "window": window, "growth": self.cooldown_growth_factor is not None}
        return SharedRules._make(
            rule.stored(getattr(self, rule.name) if on[rule.part] else None)
            for rule in SHARED_RULES
        )

    @property
    def has_plain_failures(self) -> bool:
        """Every ``Exception`` is a failure, anything else is ignored (the defaults)."""
        return (
            not self.ignored_exceptions
            and self.is_ignored_exception is _never
            and self.failure_exceptions == (Exception,)
            and self.is_failure_exception is _any_exception
        )

    @property
    def has_result_predicates(self) -> bool:
        return self.is_failure_result is not _never or self.is_ignored_result is not _never

    @property
    def cooldown_ms(self) -> int:
        return round(self.cooldown_seconds * 1000)

    @property
    def probe_lease_ms(self) -> int:
        """How long a HALF_OPEN probe holds its lease: the call timeout plus a 1 s margin."""
        if self.call_timeout_seconds is None:
            return PROBE_LEASE_WITHOUT_TIMEOUT_MS
        return max(1, round(self.call_timeout_seconds * 1000) + 1000)

    def classify_exception(self, exc: BaseException) -> Outcome:
        if isinstance(exc, self.ignored_exceptions) or self.is_ignored_exception(exc):
            return Outcome.IGNORED
        if isinstance(exc, self.failure_exceptions) and self.is_failure_exception(exc):
            return Outcome.FAILURE
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, CancelledError, SystemExit: not the dependency's fault.
            return Outcome.IGNORED
        return Outcome.SUCCESS

    def classify_result(self, result: object) -> Outcome:
        if self.is_ignored_result(result):
            return Outcome.IGNORED
        if self.is_failure_result(result):
            return Outcome.FAILURE
        return Outcome.SUCCESS


class Reply(NamedTuple):
    """What every store operation returns, laid out as the scripts' reply (its fields:
    docs/breaker-protocol.md, "Replies"). The times are on the store's clock: only their
    difference is used. A ``from_state`` other than -1 makes the caller the one reporter."""

    code: int
    state: State
    generation: int
    failures: int
    successes: int
    open_until_ms: int
    now_ms: int
    from_state: int
    probe_seq: int
    reason: str

    @property
    def transitioned(self) -> bool:
        return self.from_state >= 0


class CircuitOpenError(Exception):
    """The circuit rejected the call; the dependency was not called."""

    def __init__(self, key: str, state: State, retry_after: float | None) -> None:
        # The message is built only when printed: rejections are on the hot path.
        super().__init__(key, state, retry_after)
        self.key = key
        self.state = state
        self.retry_after = retry_after

    def __str__(self) -> str:
        hint = f"; retry in {self.retry_after:.1f} s" if self.retry_after is not None else ""
        return f"circuit {self.key} is {self.state.label}{hint}"


class BulkheadFullError(CircuitOpenError):
    """``max_concurrent_calls`` calls of this process are still running through the circuit
    (some may be hung); the dependency was not called and nothing is counted. A
    ``CircuitOpenError``, so a fallback on a rejection handles it too."""

    def __init__(self, key: str, state: State, limit: int) -> None:
        super().__init__(key, state, None)
        self.limit = limit

    def __str__(self) -> str:
        return f"circuit {self.key}: {self.limit} calls already in flight (bulkhead full)"


class StoreUnavailableError(CircuitOpenError):
    """Redis is unreachable and the circuit's ``when_store_unreachable`` is ``"open"``."""

    def __str__(self) -> str:
        return f"circuit {self.key}: breaker state unreachable, calls refused until it is back"


class ControlUnavailableError(RuntimeError):
    """A manual action or a state read needs Redis, which cannot be reached."""


class GuardedCallTimeout(TimeoutError):
    """The guarded call did not finish within ``call_timeout_seconds`` (counted a failure)."""

    def __init__(self, key: str, timeout: float) -> None:
        self.key = key
        self.timeout = timeout
        super().__init__(f"call guarded by circuit {key} timed out after {timeout:g} s")
