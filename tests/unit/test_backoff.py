"""guard.backoff.exponential_delay, the one backoff formula: 1-based, growing by its factor,
capped, and still a number after an outage of any length."""

from __future__ import annotations

import pytest

from guard.backoff import exponential_delay
from guard.connection import RECONNECT_MAX_S, RECONNECT_MIN_S, reconnect_delay


def test_grows_from_base_by_factor_up_to_the_cap() -> None:
    assert [exponential_delay(n, 1.0, 10.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert exponential_delay(3, 0.05, 2.0, factor=1.5) == pytest.approx(0.1125)
    assert exponential_delay(10**9, 0.1, 5.0) == 5.0, "no overflow after a very long outage"


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        exponential_delay(0, 1.0, 10.0)


def test_reconnecting_starts_at_the_minimum_after_each_outage() -> None:
    assert reconnect_delay(1) == RECONNECT_MIN_S
    assert reconnect_delay(0) == RECONNECT_MIN_S
    assert reconnect_delay(10**6) == RECONNECT_MAX_S
