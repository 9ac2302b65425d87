"""Driving a circuit breaker from a test."""

from __future__ import annotations

import pytest
import redis

from guard.breaker import CircuitBreaker


class Dependency:
    """A fake downstream service that counts its calls and fails while `failing` is set."""

    def __init__(self, failing: bool = False) -> None:
        self.calls = 0
        self.failing = failing

    def __call__(self) -> str:
        self.calls += 1
        if self.failing:
            raise ConnectionError("booking API down")
        return "booked"


def fail_calls(breaker: CircuitBreaker, times: int) -> None:
    """`times` calls through `breaker` to a dependency that is down, none of them rejected."""

    def down() -> None:
        raise ConnectionError("booking API down")

    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.call(down)


def commands_of_100_calls(breaker: CircuitBreaker, redis_url: str) -> dict[str, int]:
    """Redis's count of each command (commandstats) that 100 successful calls through `breaker`
    sent, after a first call that asks for admission."""
    breaker.call(lambda: None)
    stats = redis.Redis.from_url(redis_url)
    stats.config_resetstat()
    for _ in range(100):
        breaker.call(lambda: None)
    return {
        name: value["calls"]
        for name, value in stats.info("commandstats").items()
        if name != "cmdstat_config|resetstat"
    }
