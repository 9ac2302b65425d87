"""A circuit as the store has it, with one process's counters (``CircuitBreaker.snapshot()``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from guard.breaker.codec import NO_WINDOW, WindowCounts
from guard.breaker.state import SharedRules, State


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """A circuit as the store has it (``CircuitBreaker.snapshot()``), plus this process's
    counters: calls in flight and rejections by cause since the breaker was built."""

    key: str
    state: State
    generation: int
    failure_count: int
    success_count: int
    opened_at: datetime | None
    changed_at: datetime | None
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
