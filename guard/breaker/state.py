"""Circuit states, per-circuit configuration and the shape of a store's reply.

The numeric state codes are shared with the Lua scripts (``lua.py``) and the in-memory store
(``memory_store.py``); the text names are the ones stored in ``guard.breaker_state.state``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class State(enum.IntEnum):
    """State of one circuit. Values are the codes the Lua scripts store in Redis."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2
    FORCED_OPEN = 3
    FORCED_CLOSED = 4
    DISABLED = 5

    @property
    def label(self) -> str:
        """Lower-case name as stored in PostgreSQL (``half_open``, ``forced_open`` …)."""
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
    def manual(self) -> bool:
        """States an operator put the circuit in; automatic transitions never leave them."""
        return self in (State.FORCED_OPEN, State.FORCED_CLOSED, State.DISABLED)


class Outcome(enum.IntEnum):
    """How a finished call is reported to the store (codes shared with the Lua scripts)."""

    FAILURE = 0
    SUCCESS = 1
    # Neither success nor failure (a business error such as "slot already taken", or a
    # cancelled call): counts nothing, but hands back a HALF_OPEN probe lease at once.
    IGNORED = 2


class Action(enum.StrEnum):
    """Manual actions shared by all processes (``control.py``)."""

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
    """Return ``key`` or raise ``ValueError`` if it cannot name a circuit."""
    if not _KEY_RE.match(key):
        raise ValueError(f"invalid circuit key {key!r}: use 1-200 characters from [A-Za-z0-9_.:-/]")
    return key


# "local" first: the default, and the only mode that keeps protecting the dependency while
# still letting bookings through (see docs/breaker.md, "When Redis is down").
STORE_UNREACHABLE_MODES = ("local", "closed", "open")


# The failure-rate window (opt-in): "count" keeps the last N calls, "time" the last N seconds
# in one bucket per second. Codes stored in Redis (field ``cwt``): 0 = no window.
WINDOW_TYPES = ("count", "time")
WINDOW_CODES = {"": 0, "count": 1, "time": 2}
# Memory is one hash field per call slot (count) or per second (time), and a decision may sweep
# up to a whole time window of buckets, so both sizes are bounded.
MAX_COUNT_WINDOW = 1000
MAX_TIME_WINDOW_SECONDS = 600

# A stored cooldown is at most 2^31 - 1 ms (stored.MAX_COUNT): about 24 days.
MAX_COOLDOWN_SECONDS = 2_000_000

# The growing cooldown (opt-in): each failed probe multiplies the cooldown by the factor, stored
# in whole percent (200 = x2; field ``ccg``, 0 = off) so that Redis and Python compute alike.
MAX_COOLDOWN_GROWTH = 10


class SharedRules(NamedTuple):
    """The part of a circuit's configuration stored with the circuit itself.

    The window fields are all zero (``window_type`` ``""``) when the circuit has no
    failure-rate window; rates are whole percent (0 = that rule is off). The growth fields are
    zero when the cooldown does not grow (``open_cooldown_ms``)."""

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
        return (
            self.window_type,
            self.window_size,
            self.minimum_calls,
            self.failure_rate_threshold,
            self.slow_call_ms,
            self.slow_call_rate_threshold,
        )

    @property
    def has_growth(self) -> bool:
        return self.cooldown_growth_percent > 0

    def open_cooldown_ms(self, grown_ms: int) -> int:
        """The cooldown of the circuit's present opening. ``grown_ms`` is what failed probes
        made of it (stored with the circuit, 0 before any), kept within the cooldown and the
        cap; without growth it is always the plain cooldown (the scripts' ``cooldown``)."""
        if not self.cooldown_growth_percent or not grown_ms:
            return self.cooldown_ms
        return max(self.cooldown_ms, min(grown_ms, self.max_cooldown_ms))

    def grown_cooldown_ms(self, grown_ms: int) -> int:
        """The cooldown after one more failed probe: the present one times the factor, capped
        (never below the plain cooldown); 0 without growth (the scripts' ``grown``)."""
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

    def text(self) -> str:
        """``3/2/30s`` (failures/successes/cooldown), then the window's rules and the cooldown's
        growth if it has them."""
        text = f"{self.failure_threshold}/{self.success_threshold}/{self.cooldown_ms / 1000:g}s"
        return ", ".join(part for part in (text, self.window_text(), self.growth_text()) if part)


def configure_reason(previous: SharedRules | None, rules: SharedRules) -> str:
    """The reason recorded for a change of rules: ``configure: 3/2/30s -> 5/2/60s``."""
    return f"configure: {previous.text() if previous is not None else 'none'} -> {rules.text()}"


def _percent(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"{name} must be a whole percent from 1 to 100, or None (off)")


def validate_window(
    window_type: str,
    window_size: int,
    minimum_calls: int,
    failure_rate_threshold: int | None,
    slow_call_seconds: float | None,
    slow_call_rate_threshold: int | None,
) -> None:
    """Raise ``ValueError`` for window rules that cannot be stored (shared by ``BreakerConfig``
    and ``guard breaker configure``)."""
    _percent("failure_rate_threshold", failure_rate_threshold)
    _percent("slow_call_rate_threshold", slow_call_rate_threshold)
    if (slow_call_seconds is None) != (slow_call_rate_threshold is None):
        raise ValueError(
            "slow_call_seconds and slow_call_rate_threshold go together (a call slower than"
            " slow_call_seconds is slow; the circuit opens at slow_call_rate_threshold %)"
        )
    if slow_call_seconds is not None and not 0.001 <= slow_call_seconds <= 86_400:
        raise ValueError("slow_call_seconds must be from 0.001 to 86400")
    if window_type not in WINDOW_TYPES:
        raise ValueError(f"window_type must be one of {', '.join(WINDOW_TYPES)}")
    limit = MAX_COUNT_WINDOW if window_type == "count" else MAX_TIME_WINDOW_SECONDS
    unit = "calls" if window_type == "count" else "seconds"
    if isinstance(window_size, bool) or not 1 <= window_size <= limit:
        raise ValueError(f"window_size of a {window_type} window must be 1 to {limit} {unit}")
    if isinstance(minimum_calls, bool) or not 1 <= minimum_calls <= 1_000_000:
        raise ValueError("minimum_calls must be from 1 to 1000000")


def window_rules(
    window_type: str,
    window_size: int,
    minimum_calls: int,
    failure_rate_threshold: int | None,
    slow_call_seconds: float | None,
    slow_call_rate_threshold: int | None,
) -> tuple[str, int, int, int, int, int]:
    """The window fields of ``SharedRules`` (all zero when both rate rules are off)."""
    if failure_rate_threshold is None and slow_call_rate_threshold is None:
        return ("", 0, 0, 0, 0, 0)
    slow_ms = round(slow_call_seconds * 1000) if slow_call_seconds is not None else 0
    return (
        window_type,
        window_size,
        minimum_calls,
        failure_rate_threshold or 0,
        slow_ms,
        slow_call_rate_threshold or 0,
    )


def validate_growth(
    cooldown_seconds: float, factor: float | None, max_cooldown_seconds: float | None
) -> None:
    """Raise ``ValueError`` for a growing cooldown that cannot be stored (shared by
    ``BreakerConfig`` and ``guard breaker configure``)."""
    if factor is None:
        if max_cooldown_seconds is not None:
            raise ValueError("max_cooldown_seconds goes with cooldown_growth_factor")
        return
    if isinstance(factor, bool) or not 1.01 <= factor <= MAX_COOLDOWN_GROWTH:
        raise ValueError(
            f"cooldown_growth_factor must be from 1.01 to {MAX_COOLDOWN_GROWTH}, or None (off)"
        )
    if max_cooldown_seconds is None:
        raise ValueError("cooldown_growth_factor needs max_cooldown_seconds (the cap)")
    if not cooldown_seconds <= max_cooldown_seconds <= MAX_COOLDOWN_SECONDS:
        raise ValueError(
            f"max_cooldown_seconds must be from the cooldown ({cooldown_seconds:g}) to"
            f" {MAX_COOLDOWN_SECONDS}"
        )


def growth_rules(factor: float | None, max_cooldown_seconds: float | None) -> tuple[int, int]:
    """The growth fields of ``SharedRules`` (both 0 when the cooldown does not grow)."""
    if factor is None or max_cooldown_seconds is None:
        return (0, 0)
    return (round(factor * 100), round(max_cooldown_seconds * 1000))


def _never(_: object) -> bool:
    return False


def _any_exception(_: BaseException) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Rules of one circuit. Defaults match the ``guard.settings`` rows.

    ``call_timeout_seconds`` is the real timeout of a guarded call and also the lifetime of a
    HALF_OPEN probe lease (so a crashed probe cannot wedge the circuit). ``None`` disables the
    timeout (sync calls then run on the caller's thread, which is the fastest path).

    ``local_state_ttl_seconds`` bounds how long a process trusts the last state it saw: a cached
    CLOSED admits locally and a cached OPEN rejects locally (never past the end of the
    cooldown) for at most this long, so a manual reset reaches every process within it.

    ``failure_threshold``, ``success_threshold`` and ``cooldown_seconds`` are stored with the
    circuit by its first writer (or ``guard breaker configure``); every process then decides with
    the stored values, and a process whose own values differ is told once (log and metric).

    ``max_concurrent_calls`` is the circuit's bulkhead: at most this many calls of this process
    run at once through the circuit (a timed-out call that is still running counts until it
    ends), and each circuit has its own timeout threads, so a hung dependency behind one circuit
    never delays another's calls or probes. A call beyond it raises ``BulkheadFullError``.

    ``when_store_unreachable``: what the circuit does while Redis cannot be reached —
    ``"local"`` (default) decides per process under the same rules, seeded from the last state
    seen; ``"closed"`` admits every call without counting; ``"open"`` rejects every call with
    ``StoreUnavailableError``.

    ``raise_open_on_trip``: the call whose failure opens the circuit raises ``CircuitOpenError``
    (chained to the original error) instead of re-raising the original error.

    The failure-rate window (opt-in, off by default; stored with the circuit like the
    thresholds): with ``failure_rate_threshold`` (whole percent) the circuit also opens when at
    least that share of the calls in its window failed, and with ``slow_call_rate_threshold``
    when at least that share took longer than ``slow_call_seconds``; either is evaluated only
    once the window holds ``minimum_calls`` calls (capped by the size of a count window). The
    window is the last ``window_size`` calls (``window_type="count"``) or the calls of the last
    ``window_size`` seconds (``"time"``, one bucket per second). It is emptied by every
    transition; HALF_OPEN still decides on its probes alone; ignored outcomes count neither way.
    The consecutive-failure rule stays in force beside it.

    The growing cooldown (opt-in, off by default; stored with the circuit like the thresholds):
    with ``cooldown_growth_factor`` (1.01 to 10) each failed HALF_OPEN probe multiplies the
    cooldown of the next opening by the factor, up to ``max_cooldown_seconds`` (required with
    it, at least ``cooldown_seconds``); the circuit closing (or an operator's reset) starts
    again from ``cooldown_seconds``. 30 s, x2, cap 300 s: 30, 60, 120, 240, 300, 300 ...
    """

    failure_threshold: int = 3
    cooldown_seconds: float = 30.0
    success_threshold: int = 2
    call_timeout_seconds: float | None = 10.0
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
    # The failure-rate window (off unless a rate threshold is set; see the docstring).
    failure_rate_threshold: int | None = None
    slow_call_seconds: float | None = None
    slow_call_rate_threshold: int | None = None
    window_type: str = "count"
    window_size: int = 100
    minimum_calls: int = 100
    # The growing cooldown (off unless a factor is set; see the docstring).
    cooldown_growth_factor: float | None = None
    max_cooldown_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError("failure_threshold and success_threshold must be >= 1")
        if self.cooldown_seconds <= 0:
            raise ValueError("cooldown_seconds must be > 0")
        if self.call_timeout_seconds is not None and self.call_timeout_seconds <= 0:
            raise ValueError("call_timeout_seconds must be > 0 or None")
        if self.local_state_ttl_seconds < 0:
            raise ValueError("local_state_ttl_seconds must be >= 0")
        if self.max_concurrent_calls < 1:
            raise ValueError("max_concurrent_calls must be >= 1")
        if self.when_store_unreachable not in STORE_UNREACHABLE_MODES:
            raise ValueError(
                f"when_store_unreachable must be one of {', '.join(STORE_UNREACHABLE_MODES)}"
            )
        validate_window(
            self.window_type,
            self.window_size,
            self.minimum_calls,
            self.failure_rate_threshold,
            self.slow_call_seconds,
            self.slow_call_rate_threshold,
        )
        validate_growth(
            self.cooldown_seconds, self.cooldown_growth_factor, self.max_cooldown_seconds
        )

    @property
    def shared_rules(self) -> SharedRules:
        """The values stored with the circuit (what every process must agree on)."""
        return SharedRules(
            self.failure_threshold,
            self.success_threshold,
            self.cooldown_ms,
            *window_rules(
                self.window_type,
                self.window_size,
                self.minimum_calls,
                self.failure_rate_threshold,
                self.slow_call_seconds,
                self.slow_call_rate_threshold,
            ),
            *growth_rules(self.cooldown_growth_factor, self.max_cooldown_seconds),
        )

    @property
    def has_result_predicates(self) -> bool:
        return self.is_failure_result is not _never or self.is_ignored_result is not _never

    @property
    def cooldown_ms(self) -> int:
        return max(1, round(self.cooldown_seconds * 1000))

    @property
    def probe_lease_ms(self) -> int:
        """How long a HALF_OPEN probe holds its lease: the call timeout plus a margin."""
        timeout = self.call_timeout_seconds if self.call_timeout_seconds is not None else 10.0
        return max(1, round(timeout * 1000) + 1000)

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
    """What every store operation returns (same layout as the Lua scripts' reply).

    ``code``: for admission 0 = rejected, 1 = admitted, 2 = admitted as the HALF_OPEN probe;
    for an outcome 0 = ignored (stale generation or probe), 1 = counted; for manual actions 1.
    ``open_until_ms`` and ``now_ms`` are on the store's clock (Redis ``TIME``), so the caller
    only ever uses their difference. ``from_state`` is -1 unless this very operation performed
    a transition, in which case the caller is the one process that reports it.
    """

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
