"""Real Redis faults: killed (connections refused), paused with SIGSTOP, and restarted.

Latency bounds are generous for a loaded 2-core machine but still far below what an
unprotected client shows (redis-py defaults: ~7.7 s per call when Redis is down, 2 s and more
when it is paused); the measured figures are printed for the report (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import statistics
import time
from collections.abc import Callable

import pytest
import redis

from guard.breaker import (
    Backend,
    BreakerConfig,
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenError,
    EventKind,
    State,
)
from guard.breaker.codec import RecordedState, Seed
from guard.breaker.redis_store import CircuitArgs, RedisStore, make_client
from tests.support.breakers import Dependency
from tests.support.redis_server import RedisServer

CONFIG = BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None)


def _guarded_call_seconds(breaker: CircuitBreaker, fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    with contextlib.suppress(ConnectionError, CircuitOpenError):
        breaker.call(fn)
    return time.perf_counter() - started


def _report(name: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(
        f"\n{name}: {len(ordered)} calls, median {statistics.median(ordered) * 1e3:.2f} ms, "
        f"p99 {p99 * 1e3:.2f} ms, max {ordered[-1] * 1e3:.2f} ms"
    )


# the latency bounds (max 0.25 s) are crossed on a busy CPU, not by the breaker
@pytest.mark.serial
def test_redis_refusing_connections_never_fails_open(
    redis_server: RedisServer, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.stop()
    caplog.set_level(logging.WARNING, logger="guard.breaker")
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    dependency = Dependency(failing=True)
    latencies = []
    deadline = time.monotonic() + 2.5  # spans two reconnection attempts (1 s interval)
    while time.monotonic() < deadline:
        latencies.append(_guarded_call_seconds(breaker, dependency))
        time.sleep(0.005)
    _report("redis refusing connections", latencies)

    assert dependency.calls == CONFIG.failure_threshold  # at most threshold per cooldown
    assert breaker.state is State.OPEN
    assert statistics.median(latencies) < 0.005
    assert sorted(latencies)[int(len(latencies) * 0.99) - 1] <= 0.025
    assert max(latencies) < 0.25
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # logged once per outage, not once per call


def test_redis_killed_mid_run_keeps_protecting(redis_server: RedisServer, key: str) -> None:
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    for _ in range(20):
        breaker.call(lambda: None)
    assert not breaker.backend.health.down
    redis_server.stop()
    dependency = Dependency(failing=True)
    latencies = [_guarded_call_seconds(breaker, dependency) for _ in range(200)]
    _report("redis killed mid-run", latencies)
    assert dependency.calls == CONFIG.failure_threshold
    assert breaker.backend.health.down
    assert max(latencies) < 0.25


def test_redis_paused_costs_bounded_latency(redis_server: RedisServer, key: str) -> None:
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    breaker.call(lambda: None)
    redis_server.pause()
    try:
        latencies = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            started = time.perf_counter()
            breaker.call(lambda: None)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
    finally:
        redis_server.resume()
    _report("redis paused (SIGSTOP)", latencies)
    slow = [latency for latency in latencies if latency > 0.025]
    # Only the call that tries Redis (at most once per 1 s retry interval) waits for the
    # read timeout (0.1 s); every other call decides locally.
    assert len(slow) <= 4
    assert max(latencies) < 0.5
    assert breaker.backend.health.down


def test_redis_back_state_rejoined(redis_server: RedisServer, key: str) -> None:
    events: list[BreakerEvent] = []
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url, listeners=(events.append,))
    breaker.call(lambda: None)
    redis_server.stop()
    breaker.call(lambda: None)  # decided per process
    assert breaker.backend.health.down

    redis_server.start()  # same port, empty data
    operator = Backend(redis_server.url)
    other = CircuitBreaker(key, CONFIG, backend=operator)
    operator.sync_store.control(other._args, State.FORCED_OPEN, "maintenance", "ops", 0)
    time.sleep(breaker.backend.health.retry_interval + 0.1)

    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(lambda: None)
    assert rejected.value.state is State.FORCED_OPEN  # the shared state, not the local one
    assert not breaker.backend.health.down
    kinds = [event.kind for event in events]
    assert kinds.count(EventKind.REDIS_UNAVAILABLE) == 1
    assert kinds.count(EventKind.REDIS_RESTORED) == 1
    operator.close()


def test_async_breaker_protects_while_redis_is_down(redis_server: RedisServer, key: str) -> None:
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("booking API down")

    async def scenario() -> None:
        await breaker.call_async(asyncio.sleep, 0)
        redis_server.stop()
        for _ in range(50):
            started = time.perf_counter()
            with pytest.raises((ConnectionError, CircuitOpenError)):
                await breaker.call_async(failing)
            assert time.perf_counter() - started < 0.25

    asyncio.run(scenario())
    assert calls == CONFIG.failure_threshold
    assert breaker.state is State.OPEN


def test_redis_error_replies_are_handled_like_an_outage(
    redis_server: RedisServer, key: str
) -> None:
    """A Redis that answers with an error (here OOM: it refuses every write) must neither leak
    that error into the guarded call nor let a failing dependency through."""
    redis.Redis.from_url(redis_server.url).config_set("maxmemory", 1)  # noeviction: no writes
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    assert breaker.call(lambda: "booked") == "booked"
    assert breaker.backend.health.down
    dependency = Dependency(failing=True)
    for _ in range(20):
        with contextlib.suppress(ConnectionError, CircuitOpenError):
            breaker.call(dependency)
    assert dependency.calls == CONFIG.failure_threshold
    assert breaker.state is State.OPEN


def test_store_reads_back_what_the_scripts_wrote(redis_url: str, key: str) -> None:
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_url)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(Dependency(failing=True))
    stored, _ = RedisStore(make_client(redis_url)).read_with_time(key)
    assert stored["st"] == str(int(State.OPEN)) and stored["g"] == "1" and stored["f"] == "3"


class _LosesTheCircuitAfterSeeding(RedisStore):
    """A Redis that drops the circuit's hash right after ``SEED`` restored it (a Redis shared
    with a cache, at maxmemory, evicting it again in the same LRU second): a real ``DEL`` on the
    real server, between the restore and the decision asked again."""

    def seed(self, args: CircuitArgs, seed: Seed) -> bool:
        written = super().seed(args, seed)
        self.client.delete(args.keys[0])
        return written


class _EvictingBackend(Backend):
    def __init__(self, redis_url: str, recorded: RecordedState) -> None:
        super().__init__(redis_url, state_source=lambda key: recorded)
        self._sync_store = _LosesTheCircuitAfterSeeding(make_client(redis_url))


@pytest.mark.parametrize(
    ("opened_s_ago", "retry_after"),
    [
        (10, (19.0, 20.0)),  # 10 s of a 30 s cooldown gone
        # the cooldown's last seconds: the time from reading the clock to the decision (tens of
        # ms on a loaded machine) must stay well inside them, or the circuit admits a probe
        (28, (0.0, 2.0)),
        (None, (29.0, 30.0)),  # opened at an unknown time: a whole cooldown
    ],
)
def test_a_circuit_lost_again_after_its_restore_keeps_the_rest_of_its_cooldown(
    redis_url: str, key: str, opened_s_ago: float | None, retry_after: tuple[float, float]
) -> None:
    """Redis loses a restored circuit before the decision could be asked again: the process
    decides without Redis from the state it restored, with what was left of the cooldown when
    the circuit opened, by the wall clock (what PostgreSQL recorded)."""
    opened_at_ms = 0 if opened_s_ago is None else round((time.time() - opened_s_ago) * 1000)
    recorded = RecordedState(State.OPEN, 5, opened_at_ms=opened_at_ms)
    backend = _EvictingBackend(redis_url, recorded)
    breaker = CircuitBreaker(key, CONFIG, backend=backend)
    dependency = Dependency(failing=True)
    try:
        with pytest.raises(CircuitOpenError) as rejected:
            breaker.call(dependency)
        assert backend.health.down
        assert dependency.calls == 0
        assert rejected.value.state is State.OPEN
        assert rejected.value.retry_after is not None
        low, high = retry_after
        assert low <= rejected.value.retry_after <= high
    finally:
        backend.close()


def test_a_circuit_lost_again_after_its_cooldown_admits_a_probe(redis_url: str, key: str) -> None:
    """The same loss once the recorded cooldown is over: nothing is left to wait, the next call
    is a probe (without Redis, per process)."""
    recorded = RecordedState(
        State.OPEN, 5, opened_at_ms=round((time.time() - CONFIG.cooldown_seconds - 1) * 1000)
    )
    backend = _EvictingBackend(redis_url, recorded)
    breaker = CircuitBreaker(key, CONFIG, backend=backend)
    try:
        assert breaker.call(lambda: "booked") == "booked"
        assert backend.health.down
        assert CONFIG.success_threshold == 2  # one probe's success is not enough to close
        assert breaker.state is State.HALF_OPEN
    finally:
        backend.close()


def _trip(breaker: CircuitBreaker, dependency: Dependency) -> None:
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(ConnectionError):
            breaker.call(dependency)


def _refused_once_redis_is_killed(
    redis_server: RedisServer, breaker: CircuitBreaker, dependency: Dependency
) -> float:
    """Kill Redis; the next call is decided by the process alone and refused: its retry-after."""
    redis_server.stop()
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(dependency)
    assert breaker.backend.health.down
    assert dependency.calls == breaker.config.failure_threshold
    assert rejected.value.retry_after is not None
    return rejected.value.retry_after


def test_an_open_circuit_keeps_only_the_rest_of_its_cooldown_when_redis_goes_down(
    redis_server: RedisServer, key: str
) -> None:
    """Tripped through Redis, then Redis is killed: the process decides alone from the open
    state it last saw, for what was left of that cooldown, not for another one on top."""
    backend = Backend(redis_server.url)
    # no state cached per process: the call after the kill asks Redis and falls back
    config = dataclasses.replace(CONFIG, local_state_ttl_seconds=0)
    breaker = CircuitBreaker(key, config, backend=backend)
    try:
        dependency = Dependency(failing=True)
        _trip(breaker, dependency)
        opened = time.monotonic()
        retry_after = _refused_once_redis_is_killed(redis_server, breaker, dependency)
        rest = CONFIG.cooldown_seconds - (time.monotonic() - opened)
        assert rest - 1.0 <= retry_after <= CONFIG.cooldown_seconds
    finally:
        backend.close()


def test_a_half_open_circuit_waits_a_whole_cooldown_when_redis_goes_down(
    redis_server: RedisServer, key: str
) -> None:
    """Half-open through Redis (its probe admitted somewhere), then Redis is killed: the process
    knows nothing of that probe, so it waits a whole cooldown from here before its own."""
    backend = Backend(redis_server.url)
    config = dataclasses.replace(CONFIG, cooldown_seconds=1, local_state_ttl_seconds=0)
    breaker = CircuitBreaker(key, config, backend=backend)
    try:
        dependency = Dependency(failing=True)
        _trip(breaker, dependency)
        time.sleep(1.1)
        assert breaker.call(lambda: "probe") == "probe"  # admitted as the probe: half-open
        assert breaker.state is State.HALF_OPEN
        assert 0.9 <= _refused_once_redis_is_killed(redis_server, breaker, dependency) <= 1.0
    finally:
        backend.close()
