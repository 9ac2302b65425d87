"""Fixtures of the booking path's tests: a real redis-server per test module, and a breaker
registry on it with the module's CONFIG."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from guard.breaker import BreakerRegistry
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def breakers(redis_url: str, request: pytest.FixtureRequest) -> Iterator[BreakerRegistry]:
    """A registry whose default is the test module's CONFIG."""
    registry = BreakerRegistry(redis_url, default=request.module.CONFIG)
    yield registry
    registry.close()
