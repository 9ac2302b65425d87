"""guard watch refuses durations PostgreSQL cannot hold as an interval, at the boundary."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from guard.errors import ConfigurationError
from guard.ops.dispatch.loop import DispatchSettings

A_YEAR = 365 * 24 * 3600.0
LONGEST = DispatchSettings(lease_s=A_YEAR, backoff_max_s=A_YEAR)
TOO_LONG = (math.nextafter(A_YEAR, math.inf), math.inf, math.nan)


def _with(name: str, value: float) -> DispatchSettings:
    change: dict[str, Any] = {name: value}
    return dataclasses.replace(LONGEST, **change)


@pytest.mark.parametrize("name", ["poll_interval_s", "lease_s", "backoff_max_s"])
def test_a_year_is_the_longest_duration(name: str) -> None:
    _with(name, A_YEAR).check()
    for refused in TOO_LONG:
        with pytest.raises(ConfigurationError, match="a year at most"):
            _with(name, refused).check()


def test_a_send_timeout_past_a_year_is_refused_as_too_long() -> None:
    # a year is refused too, by the lease rule: the lease must be more than twice the timeout
    for refused in TOO_LONG:
        with pytest.raises(ConfigurationError, match="a year at most"):
            _with("send_timeout_s", refused).check()
