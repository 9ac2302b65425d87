"""The failure-rate window and the slow-call rule (opt-in), on real Redis and on the per-process
store: what opens the circuit, when (minimum calls), what the window forgets (time window,
transitions) and what it never counts (ignored outcomes)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

import pytest

from guard.breaker import (
    BreakerConfig,
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenError,
    EventKind,
    GuardedCallTimeout,
    Outcome,
    SharedRules,
    State,
    WindowCounts,
)
from tests.support.breakers import commands_of_100_calls


class SlotTaken(Exception):
    """A business error: the calendar answered, the slot was gone (ignored by the breaker)."""


class Calendar:
    """A fake calendar that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def ok(self) -> str:
        self.calls += 1
        return "booked"

    def fail(self) -> str:
        self.calls += 1
        raise ConnectionError("calendar down")

    def slow(self, seconds: float = 0.08) -> str:
        self.calls += 1
        time.sleep(seconds)
        return "booked"

    def taken(self) -> str:
        self.calls += 1
        raise SlotTaken


# The consecutive-failure rule out of the way (100 in a row), so the window alone decides.
WINDOW = BreakerConfig(
    failure_threshold=100,
    cooldown_seconds=30,
    call_timeout_seconds=None,
    failure_rate_threshold=50,
    window_size=40,
    minimum_calls=20,
)


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return WINDOW


def call(breaker: CircuitBreaker, fn: Callable[[], str]) -> str:
    """One guarded call; its own error or the rejection is returned by name."""
    try:
        return breaker.call(fn)
    except CircuitOpenError:
        return "rejected"
    except (ConnectionError, SlotTaken) as error:
        return type(error).__name__


def transitions(breaker: CircuitBreaker) -> list[BreakerEvent]:
    events: list[BreakerEvent] = []

    def on_event(event: BreakerEvent) -> None:
        if event.kind is EventKind.TRANSITION:
            events.append(event)

    breaker.add_listener(on_event)
    return events


def test_without_a_window_alternating_failures_never_open_the_circuit(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """The issue's observation, kept as the default: the consecutive rule alone never sees two
    failures in a row, so 50 % failures over 40 calls leave the circuit closed."""
    breaker = make_breaker(BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None))
    calendar = Calendar()
    for i in range(40):
        call(breaker, calendar.ok if i % 2 == 0 else calendar.fail)
    assert breaker.state is State.CLOSED
    assert calendar.calls == 40


def test_alternating_failures_open_the_circuit_once_the_window_has_its_minimum(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """The issue's case with a failure-rate window (50 %, last 40 calls, minimum 20): closed
    for 19 calls whatever their rate, open at the 20th (10 of 20 failed), and the calendar is
    not called again."""
    breaker, calendar = make_breaker(), Calendar()
    opened = transitions(breaker)
    outcomes = [call(breaker, calendar.ok if i % 2 == 0 else calendar.fail) for i in range(19)]
    assert "rejected" not in outcomes
    assert breaker.state is State.CLOSED
    assert call(breaker, calendar.fail) == "ConnectionError"  # the 20th: its own error
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read
    assert [call(breaker, calendar.ok) for _ in range(20)] == ["rejected"] * 20
    assert calendar.calls == 20
    [event] = opened
    assert event.reason == "10 of the last 20 calls failed (50%)"
    assert event.failure_count == 1  # the consecutive count: the window's is in the reason


def test_a_success_can_complete_the_minimum_and_open(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """Rates are judged after every counted call: when the call that completes the minimum is a
    success but the window is still at the threshold, the circuit opens on it."""
    breaker, calendar = make_breaker(), Calendar()
    for i in range(19):
        call(breaker, calendar.fail if i % 2 == 0 else calendar.ok)  # 10 failed of 19
    assert breaker.state is State.CLOSED
    assert call(breaker, calendar.ok) == "booked"  # the call itself returns its result
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read


def test_the_minimum_number_of_calls_is_respected(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """19 failures out of 19 calls is 100 %, but under the minimum: still closed."""
    breaker, calendar = make_breaker(), Calendar()
    for _ in range(19):
        assert call(breaker, calendar.fail) == "ConnectionError"
    assert breaker.state is State.CLOSED
    call(breaker, calendar.fail)
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read


def test_a_count_window_needs_at_most_its_size(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """A count window of 4 never holds 20 calls: its minimum is its size (as Resilience4j)."""
    breaker, calendar = make_breaker(dataclasses.replace(WINDOW, window_size=4)), Calendar()
    opened = transitions(breaker)
    for outcome in (calendar.ok, calendar.fail, calendar.ok):
        call(breaker, outcome)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot().window == WindowCounts(3, 1, 0)
    call(breaker, calendar.fail)
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read
    assert [e.reason for e in opened] == ["2 of the last 4 calls failed (50%)"]


def test_a_count_window_keeps_only_its_last_calls(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """Old failures slide out of a count window: 3 failures then 7 successes in a window of 10
    is 30 %; 5 more successes push the failures out entirely."""
    config = dataclasses.replace(
        WINDOW, window_size=10, minimum_calls=10, failure_rate_threshold=40
    )
    breaker, calendar = make_breaker(config), Calendar()
    for outcome in [calendar.fail] * 3 + [calendar.ok] * 12:
        call(breaker, outcome)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot().window == WindowCounts(10, 0, 0)
    for _ in range(3):
        call(breaker, calendar.fail)  # 3 of the last 10
    assert breaker.state is State.CLOSED
    call(breaker, calendar.fail)  # 4 of the last 10: 40 %
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read


SLOW = dataclasses.replace(
    WINDOW,
    failure_rate_threshold=None,  # the slow-call rule alone
    slow_call_seconds=0.05,
    slow_call_rate_threshold=50,
    window_size=4,
    minimum_calls=4,
)


@pytest.mark.serial
def test_slow_calls_open_the_circuit(make_breaker: Callable[..., CircuitBreaker]) -> None:
    """Two of four calls slower than 50 ms: the circuit opens on the 4th (a success, which
    still returns its result). Fast calls, failed or not, are never slow."""
    breaker, calendar = make_breaker(SLOW), Calendar()
    opened = transitions(breaker)
    assert [call(breaker, fn) for fn in (calendar.ok, calendar.slow, calendar.fail)] == [
        "booked",
        "booked",
        "ConnectionError",
    ]
    # failures are counted (shown), though only the slow-call rate can open this circuit
    assert breaker.snapshot().window == WindowCounts(3, 1, 1)
    assert breaker.state is State.CLOSED
    assert call(breaker, calendar.slow) == "booked"
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read
    assert [e.reason for e in opened] == ["2 of the last 4 calls slower than 50 ms (50%)"]


def test_a_slow_failure_is_both_failed_and_slow(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    config = dataclasses.replace(SLOW, failure_rate_threshold=100, slow_call_rate_threshold=100)
    breaker = make_breaker(config)

    def slow_failure() -> str:
        time.sleep(0.07)
        raise ConnectionError("calendar down, slowly")

    call(breaker, slow_failure)
    assert breaker.snapshot().window == WindowCounts(1, 1, 1)


def test_a_timeout_is_a_slow_failure(make_breaker: Callable[..., CircuitBreaker]) -> None:
    config = dataclasses.replace(SLOW, call_timeout_seconds=0.06)
    breaker = make_breaker(config)
    with pytest.raises(GuardedCallTimeout):
        breaker.call(time.sleep, 0.5)
    assert breaker.snapshot().window == WindowCounts(1, 1, 1)


@pytest.mark.serial
def test_every_kind_of_guarded_call_is_timed(make_breaker: Callable[..., CircuitBreaker]) -> None:
    """Sync and async calls, decorators and `guard()` blocks all report their duration."""
    breaker = make_breaker(dataclasses.replace(SLOW, window_size=10, minimum_calls=10))

    @breaker
    async def slow_booking() -> str:
        await asyncio.sleep(0.07)
        return "booked"

    async def scenario() -> None:
        await slow_booking()
        await breaker.call_async(asyncio.sleep, 0.07)
        async with breaker.guard():
            await asyncio.sleep(0.07)
        async with breaker.guard():
            pass  # fast

    asyncio.run(scenario())
    with breaker.guard():
        time.sleep(0.07)
    breaker.call(time.sleep, 0.07)
    ticket = breaker.acquire()
    breaker.release(ticket, Outcome.SUCCESS, elapsed_seconds=0.051)  # acquire/release pairs
    ticket = breaker.acquire()
    breaker.release(ticket, Outcome.SUCCESS, elapsed_seconds=0.05)  # exactly 50 ms: not slower
    assert breaker.snapshot().window == WindowCounts(8, 0, 6)


def test_a_time_window_forgets_calls_older_than_its_seconds(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """Time window of 2 s, 50 %, minimum 4: three failures, then 2.2 s of silence. They have
    left the window: one failure among the next four calls is 25 % (closed), where with the
    old failures it would be 4 of 7."""
    config = dataclasses.replace(WINDOW, window_type="time", window_size=2, minimum_calls=4)
    breaker, calendar = make_breaker(config), Calendar()
    for _ in range(3):
        call(breaker, calendar.fail)
    assert breaker.snapshot().window == WindowCounts(3, 3, 0)
    time.sleep(2.2)
    assert breaker.snapshot().window == WindowCounts(0, 0, 0)
    for outcome in (calendar.ok, calendar.ok, calendar.ok, calendar.fail):
        call(breaker, outcome)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot().window == WindowCounts(4, 1, 0)
    call(breaker, calendar.fail)  # 2 of 5
    assert breaker.state is State.CLOSED
    call(breaker, calendar.fail)  # 3 of 6: 50 %
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read


def test_ignored_outcomes_count_neither_way(make_breaker: Callable[..., CircuitBreaker]) -> None:
    """Business errors (ignored exceptions, ignored results) are not calls of the window: they
    neither complete the minimum nor dilute the rate."""
    config = dataclasses.replace(
        WINDOW,
        window_size=4,
        minimum_calls=4,
        ignored_exceptions=(SlotTaken,),
        is_ignored_result=lambda result: result == "no slot",
    )
    breaker, calendar = make_breaker(config), Calendar()
    for _ in range(10):
        assert call(breaker, calendar.taken) == "SlotTaken"
        assert breaker.call(lambda: "no slot") == "no slot"
    assert breaker.snapshot().window == WindowCounts(0, 0, 0)
    for outcome in (calendar.fail, calendar.taken, calendar.ok, calendar.taken, calendar.ok):
        call(breaker, outcome)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot().window == WindowCounts(3, 1, 0)
    call(breaker, calendar.fail)  # the 4th counted call: 2 of 4
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read


def test_half_open_decides_on_its_probes_and_every_transition_empties_the_window(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """Opened by the rate, the circuit probes as always (a failed probe reopens it, two probe
    successes close it) and comes back with an empty window: three failures, under the
    minimum of four, do not reopen it although the window before held 100 %."""
    config = dataclasses.replace(WINDOW, cooldown_seconds=0.3, window_size=10, minimum_calls=4)
    breaker, calendar = make_breaker(config), Calendar()
    events = transitions(breaker)
    for _ in range(4):
        call(breaker, calendar.fail)
    assert breaker.state is State.OPEN
    time.sleep(0.35)
    assert call(breaker, calendar.fail) == "ConnectionError"  # the probe fails: open again
    assert breaker.state is State.OPEN
    time.sleep(0.35)
    assert call(breaker, calendar.ok) == "booked"
    assert breaker.snapshot().window == WindowCounts(0, 0, 0)  # probes are not window calls
    assert call(breaker, calendar.ok) == "booked"
    assert breaker.state is State.CLOSED  # type: ignore[comparison-overlap]  # re-read
    assert breaker.snapshot().window == WindowCounts(0, 0, 0)
    for _ in range(3):
        call(breaker, calendar.fail)
    assert breaker.state is State.CLOSED
    assert [(e.from_state, e.state, e.reason) for e in events] == [
        (State.CLOSED, State.OPEN, "4 of the last 4 calls failed (100%)"),
        (State.OPEN, State.HALF_OPEN, "cooldown elapsed"),
        (State.HALF_OPEN, State.OPEN, "probe failed"),
        (State.OPEN, State.HALF_OPEN, "cooldown elapsed"),
        (State.HALF_OPEN, State.CLOSED, "2 probe successes"),
    ]
    breaker.reset("manual reset")  # a manual action is a transition too
    assert breaker.snapshot().window == WindowCounts(0, 0, 0)


def test_the_consecutive_rule_stays_in_force_beside_the_window(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, calendar = make_breaker(dataclasses.replace(WINDOW, failure_threshold=3)), Calendar()
    opened = transitions(breaker)
    for _ in range(3):
        call(breaker, calendar.fail)
    assert breaker.state is State.OPEN
    assert [e.reason for e in opened] == ["3 consecutive failures"]


def test_the_stored_window_applies_to_a_process_configured_without_one(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """The window's rules are stored with the circuit: a process configured without any follows
    the stored ones, slow-call rule included (it times its calls for them)."""
    plain = BreakerConfig(failure_threshold=100, cooldown_seconds=30, call_timeout_seconds=None)
    configurer, app = make_breaker(plain), make_breaker(plain)
    previous = configurer.configure(SLOW.shared_rules)
    assert previous is None
    calendar = Calendar()
    for fn in (calendar.slow, calendar.ok, calendar.slow, calendar.ok):
        call(app, fn)
    assert app.state is State.OPEN
    assert app.snapshot().rules == SLOW.shared_rules


def test_configure_with_new_window_rules_empties_the_window(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, calendar = make_breaker(), Calendar()
    for _ in range(10):
        call(breaker, calendar.fail)
    assert breaker.snapshot().window == WindowCounts(10, 10, 0)
    breaker.configure(dataclasses.replace(WINDOW, cooldown_seconds=60).shared_rules)
    assert breaker.snapshot().window == WindowCounts(10, 10, 0)  # same window: kept
    breaker.configure(dataclasses.replace(WINDOW, minimum_calls=10).shared_rules)
    assert breaker.snapshot().window == WindowCounts(0, 0, 0)
    for _ in range(9):
        call(breaker, calendar.fail)
    assert breaker.state is State.CLOSED
    call(breaker, calendar.fail)
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # re-read


def test_a_window_costs_no_extra_round_trip(redis_url: str, key: str) -> None:
    """A successful call with a window still costs one EVALSHA (it records the call in the same
    script), and so does a failed one after its admission."""
    breaker = CircuitBreaker(key, dataclasses.replace(SLOW, window_size=100), redis_url=redis_url)
    commands = commands_of_100_calls(breaker, redis_url)
    # 100 calls within one second: one EVALSHA each (+ at most one TTL refresh).
    assert commands.get("cmdstat_evalsha", 0) in (100, 101)
    assert {name for name in commands if not name.startswith("cmdstat_h")} <= {
        "cmdstat_evalsha",
        "cmdstat_info",
        "cmdstat_time",
    }
    assert breaker.snapshot().window == WindowCounts(100, 0, 0)


def test_a_process_is_told_when_its_window_differs_from_the_stored_one(
    redis_url: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = CircuitBreaker(key, WINDOW, redis_url=redis_url)
    first.call(lambda: None)  # stores its rules
    other = CircuitBreaker(key, dataclasses.replace(WINDOW, window_size=50), redis_url=redis_url)
    with caplog.at_level(logging.WARNING, logger="guard.breaker"):
        other.call(lambda: None)
    [warning] = [r.getMessage() for r in caplog.records if "stored" in r.getMessage()]
    assert "50% failed of the last 50 calls (min 20) but the circuit stores" in warning
    assert warning.endswith(
        "50% failed of the last 40 calls (min 20); the stored rules apply"
        " (change them with `guard breaker configure`)"
    )
    assert other.config_divergences == 1


def test_rules_render_as_text() -> None:
    assert SharedRules(3, 2, 30_000).text() == "3/2/30s"
    rules = dataclasses.replace(
        SLOW, failure_rate_threshold=50, window_type="time", window_size=60, minimum_calls=20
    ).shared_rules
    assert rules.text() == (
        "100/2/30s, 50% failed or 50% slower than 0.05s of the last 60s (min 20)"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"failure_rate_threshold": 0}, "whole percent from 1 to 100"),
        ({"failure_rate_threshold": 50.5}, "whole percent from 1 to 100"),
        ({"slow_call_rate_threshold": 50}, "go together"),
        ({"slow_call_seconds": 1.0}, "go together"),
        ({"failure_rate_threshold": 50, "window_size": 1001}, "1 to 1000 calls"),
        ({"failure_rate_threshold": 50, "window_type": "time", "window_size": 601}, "1 to 600"),
        ({"failure_rate_threshold": 50, "window_type": "sliding"}, "count, time"),
        ({"failure_rate_threshold": 50, "minimum_calls": 0}, "minimum_calls"),
    ],
)
def test_window_options_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerConfig(**changes)  # type: ignore[arg-type]


def test_defaults_leave_the_window_off() -> None:
    rules = BreakerConfig().shared_rules
    assert not rules.has_window and rules == SharedRules(3, 2, 30_000)
