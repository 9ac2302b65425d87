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


class SharedRules(NamedTuple):
    """The part of a circuit's configuration stored with the circuit itself."""

    failure_threshold: int
    success_threshold: int
    cooldown_ms: int


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

    @property
    def shared_rules(self) -> SharedRules:
        """The values stored with the circuit (what every process must agree on)."""
        return SharedRules(self.failure_threshold, self.success_threshold, self.cooldown_ms)

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
