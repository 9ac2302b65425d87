"""Entry points of the processes spawned by the multi-process tests (must be importable)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from guard.breaker import BreakerConfig, BreakerEvent, CircuitBreaker, CircuitOpenError, EventKind


def _breaker(redis_url: str, key: str, cooldown: float, transitions: list[str]) -> CircuitBreaker:
    config = BreakerConfig(cooldown_seconds=cooldown, call_timeout_seconds=5)
    breaker = CircuitBreaker(key, config, redis_url=redis_url)

    def on_event(event: BreakerEvent) -> None:
        if event.kind is EventKind.TRANSITION and event.shared:
            transitions.append(f"{event.from_state}->{event.state}")

    breaker.add_listener(on_event)
    return breaker


def _hammer(breaker: CircuitBreaker, dependency: Callable[[], None], run_seconds: float) -> int:
    """Call `dependency` through `breaker` for `run_seconds`: how many calls were rejected."""
    deadline = time.monotonic() + run_seconds
    rejected = 0
    while time.monotonic() < deadline:
        try:
            breaker.call(dependency)
        except ConnectionError:
            pass
        except CircuitOpenError:
            rejected += 1
            time.sleep(0.001)
    return rejected


def probe_burst(
    redis_url: str, key: str, cooldown: float, barrier: Any, dependency_calls: Any, out: Any
) -> None:
    """Wait for the common start, then try one call that holds the dependency for 300 ms."""
    transitions: list[str] = []
    breaker = _breaker(redis_url, key, cooldown, transitions)

    def slow_dependency() -> None:
        with dependency_calls.get_lock():
            dependency_calls.value += 1
        time.sleep(0.3)

    barrier.wait(timeout=60)
    try:
        breaker.call(slow_dependency)
        admitted = True
    except CircuitOpenError:
        admitted = False
    out.put({"admitted": admitted, "transitions": transitions})


def trip_together(
    redis_url: str,
    key: str,
    barrier: Any,
    dependency_calls: Any,
    out: Any,
    run_seconds: float,
) -> None:
    """Hammer a failing dependency for ``run_seconds``; report the transitions performed."""
    transitions: list[str] = []
    breaker = _breaker(redis_url, key, 30.0, transitions)

    def failing_dependency() -> None:
        with dependency_calls.get_lock():
            dependency_calls.value += 1
        time.sleep(0.02)
        raise ConnectionError("booking API down")

    barrier.wait(timeout=60)
    rejected = _hammer(breaker, failing_dependency, run_seconds)
    out.put({"transitions": transitions, "rejected": rejected})


def configured_worker(
    redis_url: str, key: str, threshold: int, cooldown: float, go: Any, check: Any, out: Any
) -> None:
    """A process with its own local configuration. The first one to run makes one successful
    call (storing its rules); any later one fails ``threshold`` times (its own idea of when the
    circuit opens) and then tries once past its own cooldown. After ``check`` each reports the
    circuit as it sees it, and the divergence it was told about (log line and metric)."""
    import logging

    from prometheus_client import REGISTRY

    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    logging.getLogger("guard.breaker").addHandler(Collect(logging.WARNING))
    config = BreakerConfig(
        failure_threshold=threshold,
        cooldown_seconds=cooldown,
        call_timeout_seconds=None,
        local_state_ttl_seconds=0,
    )
    breaker = CircuitBreaker(key, config, redis_url=redis_url)
    go.wait(timeout=60)

    def down() -> None:
        raise ConnectionError("booking API down")

    outcomes = []
    after_own_cooldown = ""
    if breaker.snapshot().rules is None:
        breaker.call(lambda: None)
        outcomes.append("ok")
    else:
        for _ in range(threshold):
            try:
                breaker.call(down)
            except CircuitOpenError:
                outcomes.append("rejected")
            except ConnectionError:
                outcomes.append("failed")
        time.sleep(cooldown + 0.2)  # past this process's own cooldown
        try:
            breaker.call(lambda: None)
            after_own_cooldown = "admitted"
        except CircuitOpenError:
            after_own_cooldown = "rejected"
    out.put("ready")
    check.wait(timeout=60)
    snapshot = breaker.snapshot()
    out.put(
        {
            "outcomes": outcomes,
            "after_own_cooldown": after_own_cooldown,
            "state": snapshot.state.label,
            "generation": snapshot.generation,
            "rules": tuple(snapshot.rules) if snapshot.rules else None,
            "warnings": [w for w in warnings if "stored" in w],
            "divergences": REGISTRY.get_sample_value(
                "guard_breaker_config_divergences_total", {"key": key}
            ),
        }
    )


def window_together(
    redis_url: str,
    key: str,
    kind: str,
    barrier: Any,
    dependency_calls: Any,
    out: Any,
    run_seconds: float,
) -> None:
    """Call a dependency that fails (``kind="failing"``) or answers slowly (``"slow"``) for
    ``run_seconds`` under a failure-rate window of 20 calls, the consecutive rule out of the way;
    report the transitions performed (with their reasons) and the rejections."""
    transitions: list[str] = []
    config = BreakerConfig(
        failure_threshold=1000,
        cooldown_seconds=30,
        call_timeout_seconds=5,
        failure_rate_threshold=50,
        slow_call_seconds=0.05,
        slow_call_rate_threshold=50,
        window_size=20,
        minimum_calls=20,
    )
    breaker = CircuitBreaker(key, config, redis_url=redis_url)

    def on_event(event: BreakerEvent) -> None:
        if event.kind is EventKind.TRANSITION and event.shared:
            transitions.append(f"{event.from_state}->{event.state}: {event.reason}")

    breaker.add_listener(on_event)

    def dependency() -> None:
        with dependency_calls.get_lock():
            dependency_calls.value += 1
        if kind == "failing":
            time.sleep(0.02)
            raise ConnectionError("booking API down")
        time.sleep(0.07)

    barrier.wait(timeout=60)
    rejected = _hammer(breaker, dependency, run_seconds)
    out.put({"transitions": transitions, "rejected": rejected})
