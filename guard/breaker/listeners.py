"""Breaker events and their listeners: plain callables run on the calling thread; one that
raises is logged and never breaks the guarded call. And the Prometheus counters of every live
breaker, read when scraped (a rejection then costs a plain counter increment)."""

from __future__ import annotations

import enum
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from guard.breaker.state import Reply, State

log = logging.getLogger("guard.breaker")


class EventKind(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"
    TIMEOUT = "timeout"
    # open or forced open, or Redis unreachable with when_store_unreachable="open"
    REJECTED = "rejected"
    BULKHEAD_FULL = "bulkhead_full"  # max_concurrent_calls of this process in flight
    TRANSITION = "transition"  # automatic or manual (``actor`` set) state change
    REDIS_UNAVAILABLE = "redis_unavailable"
    REDIS_RESTORED = "redis_restored"


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One thing that happened to a circuit; ``shared``: decided in Redis, for every process
    (only those transitions go to PostgreSQL), not by this process alone while Redis was down."""

    kind: EventKind
    key: str
    state: State
    generation: int
    occurred_at: datetime
    host: str
    pid: int
    shared: bool = True
    from_state: State | None = None
    reason: str = ""
    failure_count: int = 0
    success_count: int = 0
    actor: str | None = None
    opened_at: datetime | None = None
    elapsed_seconds: float | None = None
    error: BaseException | None = None


Listener = Callable[[BreakerEvent], None]


def transition_event(
    key: str,
    reply: Reply,
    occurred_at: datetime,
    host: str,
    pid: int,
    *,
    shared: bool = True,
    reason: str | None = None,
    actor: str | None = None,
) -> BreakerEvent:
    """The transition ``reply`` made; it opened the circuit (if it did) at ``occurred_at``."""
    return BreakerEvent(
        EventKind.TRANSITION,
        key,
        reply.state,
        reply.generation,
        occurred_at,
        host,
        pid,
        shared,
        State(reply.from_state),
        reply.reason if reason is None else reason,
        reply.failures,
        reply.successes,
        actor,
        occurred_at if reply.state.rejects else None,
    )


class Listeners(list[Listener]):
    """An ordered set of listeners."""

    def add(self, listener: Listener) -> None:
        if listener not in self:
            self.append(listener)

    def remove(self, listener: Listener) -> None:
        if listener in self:
            super().remove(listener)

    def emit(self, event: BreakerEvent) -> None:
        for listener in tuple(self):
            try:
                listener(event)
            except Exception:
                log.exception("breaker listener %r failed on %s event", listener, event.kind)


class BreakerCollector(Collector):
    def __init__(self) -> None:
        self._breakers: weakref.WeakSet[Any] = weakref.WeakSet()  # CircuitBreakers
        self._lock = threading.Lock()

    def track(self, breaker: Any) -> None:
        with self._lock:
            self._breakers.add(breaker)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            breakers = list(self._breakers)
        for name, documentation, counts in _FAMILIES:
            labels = ["key", "reason"] if counts[0][1] else ["key"]
            totals: Counter[tuple[str, ...]] = Counter()
            for breaker in breakers:
                for attribute, reason in counts:
                    label: tuple[str, ...] = (breaker.key, reason)[: len(labels)]
                    totals[label] += getattr(breaker, attribute)
            family = CounterMetricFamily(name, documentation, labels=labels)
            for label, value in sorted(totals.items()):
                family.add_metric(list(label), float(value))
            yield family


# name, help, (breaker counter, its ``reason`` label or "" for none) ...
_FAMILIES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "guard_breaker_rejections",
        "Calls a circuit refused without calling its dependency, by cause: open (open or"
        " forced open), bulkhead (max_concurrent_calls in flight), store_unavailable (Redis"
        " unreachable and when_store_unreachable=open).",
        (
            ("rejected_open", "open"),
            ("rejected_bulkhead", "bulkhead"),
            ("rejected_store_unavailable", "store_unavailable"),
        ),
    ),
    (
        "guard_breaker_failures",
        "Guarded calls the circuit counted as failures, by cause: error (an exception or"
        " result the breaker counts as a failure) or timeout (call_timeout_seconds passed).",
        (("failed_calls", "error"), ("timed_out_calls", "timeout")),
    ),
    (
        "guard_breaker_config_divergences",
        "Times a breaker of this process found the rules stored with its circuit (failure"
        " and success threshold, cooldown) different from its own configuration; the stored"
        " rules are the ones applied.",
        (("config_divergences", ""),),
    ),
    (
        "guard_breaker_state_restored",
        "Times a breaker of this process found its circuit missing from Redis (evicted under"
        " maxmemory, flushed) and restored it from the state PostgreSQL recorded (or, failing"
        " that, the state this process last saw). Any increase means Redis lost breaker"
        " state: check its maxmemory-policy.",
        (("restored_states", ""),),
    ),
)


COLLECTOR = BreakerCollector()
REGISTRY.register(COLLECTOR)
