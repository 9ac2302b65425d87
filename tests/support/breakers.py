"""Driving a circuit breaker from a test."""

from __future__ import annotations

import pytest

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
