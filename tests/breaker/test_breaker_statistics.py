"""Breaker statistics (issue 53, row 7): when each circuit last counted a failure and when it
last closed, on real Redis and on the per-process store (``make_breaker`` runs each test on
both)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from guard.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, Outcome, State

# The stores keep milliseconds; the memory store's clock is turned into wall time per snapshot.
SLACK = timedelta(milliseconds=20)
# Longer than SLACK: a stamp written again after this pause is told apart from the first one.
PAUSE_SECONDS = 0.1


def down() -> None:
    raise ConnectionError("calendar down")


def fail(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConnectionError):
        breaker.call(down)


def now() -> datetime:
    return datetime.now(UTC)


def within(stamp: datetime | None, earliest: datetime, latest: datetime) -> bool:
    return stamp is not None and earliest - SLACK <= stamp <= latest + SLACK


def test_a_new_circuit_has_no_statistics(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker = make_breaker()
    breaker.call(lambda: "booked")
    snapshot = breaker.snapshot()
    assert snapshot.last_failure_at is None
    assert snapshot.closed_at is None


def test_last_failure_at_is_set_by_a_failure_and_kept_by_a_success(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker = make_breaker()
    before = now()
    fail(breaker)
    failed = breaker.snapshot().last_failure_at
    assert within(failed, before, now()), failed
    time.sleep(PAUSE_SECONDS)
    breaker.call(lambda: "booked")
    ignored = breaker.acquire()
    breaker.release(ignored, Outcome.IGNORED)
    kept = breaker.snapshot().last_failure_at
    assert failed is not None and kept is not None
    assert abs(kept - failed) < SLACK, "a success or an ignored outcome moved last_failure_at"
    before = now()
    fail(breaker)
    assert within(breaker.snapshot().last_failure_at, before, now())


def test_a_failed_probe_is_a_failure_too(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker = make_breaker()
    for _ in range(3):
        fail(breaker)
    time.sleep(0.35)  # the 0.3 s cooldown
    before = now()
    fail(breaker)  # the HALF_OPEN probe
    snapshot = breaker.snapshot()
    assert snapshot.state is State.OPEN
    assert within(snapshot.last_failure_at, before, now())


def test_a_late_failure_of_an_older_generation_is_not_recorded(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    slow, other = make_breaker(), make_breaker()
    ticket = slow.acquire()
    other.force_open("maintenance")
    other.reset("done")
    slow.release(ticket, Outcome.FAILURE)  # belongs to the generation before the reset
    assert other.snapshot().last_failure_at is None


def test_closed_at_is_set_when_probes_close_the_circuit(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker = make_breaker()
    for _ in range(3):
        fail(breaker)
    assert breaker.snapshot().closed_at is None, "opening is not closing"
    time.sleep(0.35)
    breaker.call(lambda: "booked")
    assert breaker.snapshot().closed_at is None, "one probe success of two does not close"
    before = now()
    breaker.call(lambda: "booked")
    snapshot = breaker.snapshot()
    assert snapshot.state is State.CLOSED
    closed = snapshot.closed_at
    assert within(closed, before, now()), closed
    time.sleep(PAUSE_SECONDS)
    breaker.call(lambda: "booked")
    fail(breaker)
    kept = breaker.snapshot().closed_at
    assert closed is not None and kept is not None
    assert abs(kept - closed) < SLACK, "calls of a closed circuit moved closed_at"


def test_closed_at_is_set_by_a_reset_and_not_by_other_actions(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker = make_breaker()
    breaker.call(lambda: "booked")
    breaker.reset("already closed: not a close")
    assert breaker.snapshot().closed_at is None
    breaker.force_close("must book")
    breaker.disable("investigating")
    assert breaker.snapshot().closed_at is None
    breaker.force_open("maintenance")
    before = now()
    breaker.reset("maintenance over")
    assert within(breaker.snapshot().closed_at, before, now())


def test_statistics_do_not_change_rejections(make_breaker: Callable[..., CircuitBreaker]) -> None:
    """Recording the statistics leaves the decisions alone: an open circuit still rejects
    without calling, and its cooldown is the configured one."""
    breaker = make_breaker(BreakerConfig(cooldown_seconds=0.3, call_timeout_seconds=None))
    for _ in range(3):
        fail(breaker)
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(down)
    assert rejected.value.retry_after is not None and 0 < rejected.value.retry_after <= 0.3
    assert breaker.snapshot().cooldown_seconds == 0.3
