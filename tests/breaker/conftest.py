"""Fixtures for the breaker tests: real redis-server processes on free loopback ports."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from guard.breaker import Backend, BreakerConfig, CircuitBreaker, PostgresWriteBehind
from tests.support.breakers import fail_calls
from tests.support.cli import BreakerCli, breaker_cli
from tests.support.redis_server import RedisServer

_keys = itertools.count(1)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def cli(db_url: str, redis_url: str) -> BreakerCli:
    """`guard breaker ARGS...` with this test's database and Redis."""
    return breaker_cli(db_url, redis_url)


@pytest.fixture
def backend(redis_url: str) -> Iterator[Backend]:
    """One Redis connection for the breakers a test builds on it."""
    shared = Backend(redis_url)
    yield shared
    shared.close()


@pytest.fixture
def tripped(db_url: str, redis_url: str, key: str) -> CircuitBreaker:
    """The booking circuit opened by failures (cooldown 30 s, re-read from Redis on every call),
    recorded in PostgreSQL by the write-behind."""
    config = BreakerConfig(
        cooldown_seconds=30, call_timeout_seconds=None, local_state_ttl_seconds=0
    )
    writer = PostgresWriteBehind(db_url)
    circuit = CircuitBreaker(key, config, redis_url=redis_url, listeners=(writer,))
    fail_calls(circuit, 3)
    assert writer.close()
    return circuit


@pytest.fixture
def key() -> str:
    """A circuit key no other test uses (tests may share a Redis server within a module)."""
    return f"appointment_booking:service:{os.getpid()}{next(_keys)}"


@pytest.fixture
def fast_config() -> BreakerConfig:
    """The production rules with a short cooldown so tests can cross it."""
    return BreakerConfig(
        failure_threshold=3,
        success_threshold=2,
        cooldown_seconds=0.3,
        call_timeout_seconds=None,
    )


@pytest.fixture
def breaker_config(fast_config: BreakerConfig) -> BreakerConfig:
    """The rules `make_breaker` builds with by default; a module overrides it for its own."""
    return fast_config


@pytest.fixture(params=["redis", "memory"])
def make_breaker(
    request: pytest.FixtureRequest, key: str, breaker_config: BreakerConfig
) -> Iterator[Callable[..., CircuitBreaker]]:
    """Breakers on one circuit, every scenario on both stores: with Redis each breaker has its
    own Backend (like a process), in memory they share one."""
    backends: list[Backend] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    shared_memory_backend = Backend(None)

    def build(config: BreakerConfig = breaker_config, circuit: str = key) -> CircuitBreaker:
        backend = Backend(url) if url else shared_memory_backend
        backends.append(backend)
        return CircuitBreaker(circuit, config, backend=backend)

    yield build
    for backend in backends:
        backend.close()
