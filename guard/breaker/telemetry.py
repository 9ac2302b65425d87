"""Prometheus counters of the breakers of an application process.

A collector in ``prometheus_client``'s default registry reads every live breaker's counters when
scraped, so an application that already serves ``/metrics`` (``start_http_server`` or its
framework's exporter) exposes them with no further code, and a rejection costs a plain counter
increment instead of a Prometheus client call (which was a third of a rejection's cost).
``guard metrics`` reads PostgreSQL and cannot see these: they count what happens inside the
application's processes.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector


class Counted(Protocol):
    key: str
    rejected_open: int
    rejected_bulkhead: int
    rejected_store_unavailable: int
    failed_calls: int
    timed_out_calls: int
    config_divergences: int
    restored_states: int


class BreakerCollector(Collector):
    def __init__(self) -> None:
        self._breakers: weakref.WeakSet[Counted] = weakref.WeakSet()
        self._lock = threading.Lock()

    def track(self, breaker: Counted) -> None:
        with self._lock:
            self._breakers.add(breaker)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            breakers = list(self._breakers)
        rejections: Counter[tuple[str, str]] = Counter()
        divergences: Counter[str] = Counter()
        failures: Counter[tuple[str, str]] = Counter()
        restored: Counter[str] = Counter()
        for breaker in breakers:
            rejections[breaker.key, "open"] += breaker.rejected_open
            rejections[breaker.key, "bulkhead"] += breaker.rejected_bulkhead
            rejections[breaker.key, "store_unavailable"] += breaker.rejected_store_unavailable
            divergences[breaker.key] += breaker.config_divergences
            failures[breaker.key, "error"] += breaker.failed_calls
            failures[breaker.key, "timeout"] += breaker.timed_out_calls
            restored[breaker.key] += breaker.restored_states
        family = CounterMetricFamily(
            "guard_breaker_rejections",
            "Calls a circuit refused without calling its dependency, by cause: open (open or"
            " forced open), bulkhead (max_concurrent_calls in flight), store_unavailable (Redis"
            " unreachable and when_store_unreachable=open).",
            labels=["key", "reason"],
        )
        for (key, reason), value in sorted(rejections.items()):
            family.add_metric([key, reason], float(value))
        yield family
        failed = CounterMetricFamily(
            "guard_breaker_failures",
            "Guarded calls the circuit counted as failures, by cause: error (an exception or"
            " result the breaker counts as a failure) or timeout (call_timeout_seconds passed).",
            labels=["key", "reason"],
        )
        for (key, reason), value in sorted(failures.items()):
            failed.add_metric([key, reason], float(value))
        yield failed
        diverging = CounterMetricFamily(
            "guard_breaker_config_divergences",
            "Times a breaker of this process found the rules stored with its circuit (failure"
            " and success threshold, cooldown) different from its own configuration; the stored"
            " rules are the ones applied.",
            labels=["key"],
        )
        for key, value in sorted(divergences.items()):
            diverging.add_metric([key], float(value))
        yield diverging
        restores = CounterMetricFamily(
            "guard_breaker_state_restored",
            "Times a breaker of this process found its circuit missing from Redis (evicted under"
            " maxmemory, flushed) and restored it from the state PostgreSQL recorded (or, failing"
            " that, the state this process last saw). Any increase means Redis lost breaker"
            " state: check its maxmemory-policy.",
            labels=["key"],
        )
        for key, value in sorted(restored.items()):
            restores.add_metric([key], float(value))
        yield restores


COLLECTOR = BreakerCollector()
REGISTRY.register(COLLECTOR)
