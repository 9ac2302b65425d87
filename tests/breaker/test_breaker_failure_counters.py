"""Failed and timed-out guarded calls per circuit, as an application's /metrics shows them
(``guard_breaker_failures_total{key,reason}``, read from the breakers at scrape time).

The dependency is real (the loopback HTTP server of the bulkhead tests: ``/fail`` answers 503,
``/hang`` blocks until released); the breakers share a real Redis.
"""

from __future__ import annotations

import asyncio
import urllib.error
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from guard.breaker import Backend, BreakerConfig, CircuitBreaker, GuardedCallTimeout
from tests.breaker.test_breaker_bulkhead import Dependency


@pytest.fixture
def dependency() -> Iterator[Dependency]:
    served = Dependency()
    yield served
    served.close()


def _scraped(key: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value("guard_breaker_failures_total", {"key": key, "reason": reason})


def test_failures_and_timeouts_are_counted_apart_and_successes_not(
    backend: Backend, dependency: Dependency, key: str
) -> None:
    config = BreakerConfig(
        call_timeout_seconds=0.3,
        failure_threshold=50,
        ignored_exceptions=(KeyError,),
    )
    breaker = CircuitBreaker(key, config, backend=backend)
    assert (_scraped(key, "error"), _scraped(key, "timeout")) == (0, 0)

    for _ in range(3):
        assert breaker.call(dependency.get, "/ok") == b"ok"
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError):
            breaker.call(dependency.get, "/fail")
    with pytest.raises(GuardedCallTimeout):
        breaker.call(dependency.get, "/hang")

    def ignored() -> None:
        raise KeyError("not the dependency's fault")

    with pytest.raises(KeyError):
        breaker.call(ignored)
    with pytest.raises(urllib.error.HTTPError), breaker.guard():
        dependency.get("/fail")

    assert _scraped(key, "error") == 3  # two calls and one guarded block; the KeyError is ignored
    assert _scraped(key, "timeout") == 1
    assert dependency.requests["/ok"] == 3


def test_async_failures_and_timeouts_are_counted(backend: Backend, key: str) -> None:
    config = BreakerConfig(call_timeout_seconds=0.2, failure_threshold=50)
    breaker = CircuitBreaker(key, config, backend=backend)

    async def fails() -> None:
        raise ConnectionError("calendar refused")

    async def hangs() -> None:
        await asyncio.sleep(5)

    async def succeeds() -> str:
        return "booked"

    async def scenario() -> None:
        assert await breaker.call_async(succeeds) == "booked"
        with pytest.raises(ConnectionError):
            await breaker.call_async(fails)
        with pytest.raises(GuardedCallTimeout):
            await breaker.call_async(hangs)
        with pytest.raises(GuardedCallTimeout):
            async with breaker.guard():
                await asyncio.sleep(5)

    asyncio.run(scenario())
    assert _scraped(key, "error") == 1
    assert _scraped(key, "timeout") == 2
