"""Fixtures for the breaker tests: real redis-server processes on free loopback ports."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from guard.breaker import BreakerConfig
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
