"""Driving a circuit breaker from a test."""

from __future__ import annotations

import pytest

from guard.breaker import CircuitBreaker


def fail_calls(breaker: CircuitBreaker, times: int) -> None:
    """`times` calls through `breaker` to a dependency that is down, none of them rejected."""

    def down() -> None:
        raise ConnectionError("booking API down")

    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.call(down)
