"""Prometheus counters kept by the breakers of an application process.

They live in ``prometheus_client``'s default registry, so an application that already serves
``/metrics`` (``prometheus_client.start_http_server`` or its framework's exporter) exposes them
with no further code. ``guard metrics`` reads PostgreSQL and cannot see them: they count what
happens inside the application's processes.
"""

from __future__ import annotations

from prometheus_client import Counter

REJECTIONS = Counter(
    "guard_breaker_rejections",
    "Calls a circuit refused without calling its dependency, by cause: open (open or forced"
    " open), bulkhead (max_concurrent_calls in flight), store_unavailable (Redis unreachable and"
    " when_store_unreachable=open).",
    ["key", "reason"],
)

CONFIG_DIVERGENCES = Counter(
    "guard_breaker_config_divergences",
    "Circuits whose stored rules (failure/success threshold, cooldown) differ from this"
    " process's configuration; the stored rules are the ones applied.",
    ["key"],
)
