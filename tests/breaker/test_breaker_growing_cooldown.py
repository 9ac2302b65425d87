"""The growing cooldown (issue 53): each failed HALF_OPEN probe multiplies the cooldown of the
next opening by a factor, up to a cap; closing starts again from the configured cooldown. Off by
default. Every scenario on real Redis and on the per-process store (``make_breaker``).

The cooldown a circuit applies is read twice: as the breaker reports it (``snapshot()``), and as
it behaves (``retry_after`` of a rejection, which is the time left on the store's clock, and a
probe that is only admitted once the grown cooldown is over).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from guard.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from tests.support.breakers import Dependency

BASE = 0.2
GROWING = BreakerConfig(
    cooldown_seconds=BASE,
    call_timeout_seconds=None,
    cooldown_growth_factor=2,
    max_cooldown_seconds=0.6,
)
# Past the end of a cooldown, with room for a loaded machine.
MARGIN = 0.08
# The stores keep milliseconds.
STORE_S = 0.002


def open_circuit(breaker: CircuitBreaker, calendar: Dependency) -> None:
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(calendar)
    assert breaker.state is State.OPEN


def rejected_retry_after(breaker: CircuitBreaker, calendar: Dependency) -> float:
    calls = calendar.calls
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(calendar)
    assert calendar.calls == calls, "an open circuit called the calendar"
    assert rejected.value.retry_after is not None
    return rejected.value.retry_after


def probe_after(
    breaker: CircuitBreaker, calendar: Dependency, seconds: float
) -> tuple[float, float]:
    """Wait ``seconds`` and make the HALF_OPEN probe (it must really reach the calendar). The
    local clock (time.monotonic()) before and after the probe: a failed probe opens the circuit
    again between the two."""
    time.sleep(seconds)
    calls = calendar.calls
    started = time.monotonic()
    if calendar.failing:
        with pytest.raises(ConnectionError):
            breaker.call(calendar)
    else:
        breaker.call(calendar)
    done = time.monotonic()
    assert calendar.calls == calls + 1, "the probe was not admitted"
    return started, done


def assert_left_of(
    breaker: CircuitBreaker, calendar: Dependency, cooldown_s: float, probed: tuple[float, float]
) -> None:
    """A rejection now says what is left of a cooldown of ``cooldown_s`` begun by the probe: at
    least ``cooldown_s`` less the time gone since the probe started, however slow the machine.
    A shorter cooldown fails this whenever less than the difference has gone (a few
    milliseconds, on a loaded machine tens of them)."""
    left = rejected_retry_after(breaker, calendar)
    gone = time.monotonic() - probed[0]
    assert cooldown_s - gone - STORE_S <= left <= cooldown_s, (cooldown_s, left, gone)


def cooldown(breaker: CircuitBreaker) -> float | None:
    return breaker.snapshot().cooldown_seconds


def open_with_the_configured_cooldown(breaker: CircuitBreaker, calendar: Dependency) -> None:
    """Open the circuit: it waits the configured cooldown, however long an earlier one grew."""
    calendar.failing = True
    open_circuit(breaker, calendar)
    assert cooldown(breaker) == BASE
    assert rejected_retry_after(breaker, calendar) <= BASE


def grown_once(make_breaker: Callable[..., CircuitBreaker]) -> tuple[CircuitBreaker, Dependency]:
    """A growing circuit whose first probe failed: its cooldown doubled to 0.4 s."""
    breaker, calendar = make_breaker(GROWING), Dependency(failing=True)
    open_circuit(breaker, calendar)
    probe_after(breaker, calendar, BASE + MARGIN)
    assert cooldown(breaker) == 0.4
    return breaker, calendar


def test_each_failed_probe_doubles_the_cooldown_up_to_the_cap(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, calendar = make_breaker(GROWING), Dependency(failing=True)
    open_with_the_configured_cooldown(breaker, calendar)

    probed = probe_after(breaker, calendar, BASE + MARGIN)  # fails: 0.2 -> 0.4, under the cap
    assert cooldown(breaker) == 0.4
    assert_left_of(breaker, calendar, 0.4, probed)
    # the first cooldown's length is not enough any more: rejected once a cooldown of that
    # length would be over (timed from the probe, so the calls above take none of the room the
    # grown one leaves: 0.18 s for one call on a loaded machine)
    time.sleep(max(0.0, probed[1] + BASE + 0.02 - time.monotonic()))
    rejected_retry_after(breaker, calendar)

    probed = probe_after(breaker, calendar, 0.4 - BASE)  # fails: 0.4 -> 0.8, capped at 0.6
    assert cooldown(breaker) == 0.6
    assert_left_of(breaker, calendar, 0.6, probed)

    probed = probe_after(breaker, calendar, 0.6 + MARGIN)  # fails: stays at the cap
    assert cooldown(breaker) == 0.6
    assert_left_of(breaker, calendar, 0.6, probed)


def test_closing_starts_again_from_the_configured_cooldown(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, calendar = grown_once(make_breaker)
    calendar.failing = False
    probe_after(breaker, calendar, 0.4 + MARGIN)
    probe_after(breaker, calendar, 0)  # the second probe success closes it
    assert breaker.state is State.CLOSED
    assert cooldown(breaker) == BASE

    open_with_the_configured_cooldown(breaker, calendar)


def test_a_reset_starts_again_from_the_configured_cooldown(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, calendar = grown_once(make_breaker)
    breaker.reset("calendar fixed")
    open_with_the_configured_cooldown(breaker, calendar)


def test_off_by_default_the_cooldown_stays_constant(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    constant = BreakerConfig(cooldown_seconds=BASE, call_timeout_seconds=None)
    assert not constant.shared_rules.has_growth
    breaker, calendar = make_breaker(constant), Dependency(failing=True)
    open_circuit(breaker, calendar)
    for _ in range(3):
        probe_after(breaker, calendar, BASE + MARGIN)
        assert cooldown(breaker) == BASE
        assert rejected_retry_after(breaker, calendar) <= BASE


def test_the_growth_is_stored_with_the_circuit_for_every_process(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """A process configured without growth follows the circuit's stored rules (first writer
    wins), as for the thresholds."""
    first, calendar = make_breaker(GROWING), Dependency(failing=True)
    first.call(lambda: "booked")  # stores the rules
    other = make_breaker(BreakerConfig(cooldown_seconds=BASE, call_timeout_seconds=None))
    open_circuit(other, calendar)
    probed = probe_after(other, calendar, BASE + MARGIN)
    assert cooldown(other) == 0.4
    assert_left_of(other, calendar, 0.4, probed)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cooldown_growth_factor": 2.0}, "needs max_cooldown_seconds"),
        ({"max_cooldown_seconds": 60.0}, "goes with cooldown_growth_factor"),
        ({"cooldown_growth_factor": 1.0, "max_cooldown_seconds": 60.0}, "from 1.01 to 10"),
        ({"cooldown_growth_factor": 11.0, "max_cooldown_seconds": 60.0}, "from 1.01 to 10"),
        ({"cooldown_growth_factor": 2.0, "max_cooldown_seconds": 10.0}, "from the cooldown"),
        ({"cooldown_growth_factor": 2.0, "max_cooldown_seconds": 3e6}, "from the cooldown"),
    ],
)
def test_growth_settings_out_of_range_are_one_clear_error(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerConfig(cooldown_seconds=30, **options)


def test_growth_settings_at_their_bounds_are_accepted() -> None:
    rules = BreakerConfig(
        cooldown_seconds=30, cooldown_growth_factor=10, max_cooldown_seconds=30
    ).shared_rules
    assert (rules.cooldown_growth_percent, rules.max_cooldown_ms) == (1000, 30_000)
    low = BreakerConfig(cooldown_growth_factor=1.01, max_cooldown_seconds=2_000_000).shared_rules
    assert (low.cooldown_growth_percent, low.max_cooldown_ms) == (101, 2_000_000_000)
    assert low.text() == "3/2/30s, cooldown x1.01 up to 2e+06s"
