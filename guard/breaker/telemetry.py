"""Prometheus counters of an application's breakers, read from every live breaker when scraped
(a rejection then costs a plain counter increment, not a Prometheus client call)."""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector


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
