"""guard.retry without a database or a real clock: the documented defaults, both sides of every
limit (attempts, the deadline, the budget), the jitter formulas with draws at the ends of their
range, what is retried, and close().

Time is a clock the test moves: an attempt "takes" what it adds to it and a sleep adds what it
sleeps, so an attempt that ends exactly at the deadline is exactly at the deadline."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from typing import Literal

import pytest

from guard.breaker.state import CircuitOpenError, State
from guard.retry import AttemptTimeout, Retry, RetryBudget, RetryPolicy, is_transient


class Clock:
    """A monotonic clock that moves only when told (an attempt's work, a sleep)."""

    def __init__(self, now: float = 1.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Failing:
    """Fails every call after `takes` seconds of the clock; counts the calls."""

    def __init__(self, clock: Clock, takes: float = 0.0, error: BaseException | None = None):
        self.clock = clock
        self.takes = takes
        self.error = error or ConnectionError("reset by peer")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls > 1000:  # no test wants that many: a retry that never stops fails at once
            raise RuntimeError("still retrying after 1000 attempts")
        self.clock.now += self.takes
        raise self.error


class TopOfRange(random.Random):
    """Every jitter draw is the top of its range: the longest sleep the formula allows."""

    def uniform(self, a: float, b: float) -> float:
        return b


class BottomOfRange(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def _sleeps(policy: RetryPolicy, rng: random.Random) -> list[float]:
    clock = Clock()
    failing = Failing(clock)
    with pytest.raises(ConnectionError):
        Retry(policy, rng=rng, clock=clock, sleep=clock.sleep).call(failing)
    assert failing.calls == policy.max_attempts
    return clock.slept


def _open(key: str = "calendar") -> CircuitOpenError:
    return CircuitOpenError(key, State.OPEN, 5.0)


# ------------------------------------------------------------------ defaults and validation


def test_the_defaults_are_the_documented_ones() -> None:
    """docs/breaker.md, "Retry": the table of defaults."""
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay_seconds) == (3, 0.05)
    assert policy.max_delay_seconds == 2
    assert (policy.jitter, policy.deadline_seconds) == ("full", 10)
    assert policy.attempt_timeout_seconds is None
    assert policy.retry_on is is_transient
    budget = RetryBudget()
    assert (budget.ratio, budget.min_per_second, budget.burst) == (0.2, 1, 10)


def test_a_policy_cannot_be_changed_after_it_is_made() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 10  # type: ignore[misc]


def test_one_attempt_is_the_least_and_means_no_retry() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    clock = Clock()
    failing = Failing(clock)
    with pytest.raises(ConnectionError):
        Retry(RetryPolicy(max_attempts=1), clock=clock, sleep=clock.sleep).call(failing)
    assert (failing.calls, clock.slept) == (1, [])


def test_a_large_attempt_limit_is_reached_and_kept() -> None:
    """Counts past 256 are new int objects in CPython: the limit is compared by value."""
    clock = Clock()
    failing = Failing(clock)
    policy = RetryPolicy(max_attempts=300, deadline_seconds=None, retry_on=lambda e: True)

    def at_most_300() -> str:
        if failing.calls == 300:
            raise ValueError("a 301st attempt")
        return failing()

    with pytest.raises(ConnectionError):
        Retry(policy, rng=BottomOfRange(), clock=clock, sleep=clock.sleep).call(at_most_300)
    assert failing.calls == 300


def test_everything_after_the_policy_is_named() -> None:
    with pytest.raises(TypeError):
        Retry(RetryPolicy(), None)  # type: ignore[call-arg]
    assert Retry(policy=RetryPolicy(max_attempts=2)).policy.max_attempts == 2


def test_an_unknown_jitter_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter="equal")  # type: ignore[arg-type]


# ------------------------------------------------------------------ what is retried


def test_the_default_predicate() -> None:
    assert is_transient(ConnectionError("reset"))
    assert is_transient(TimeoutError("slow"))
    assert not is_transient(ValueError("bad input"))
    assert not is_transient(_open()), "an open circuit means stop calling"


def test_an_open_circuit_is_never_retried_even_when_retry_on_says_yes() -> None:
    for retry_on in (is_transient, lambda error: True):
        clock = Clock()
        failing = Failing(clock, error=_open())
        policy = RetryPolicy(max_attempts=5, retry_on=retry_on)
        with pytest.raises(CircuitOpenError):
            Retry(policy, clock=clock, sleep=clock.sleep).call(failing)
        assert (failing.calls, clock.slept) == (1, [])


def test_retry_on_decides_what_is_retried() -> None:
    policy = RetryPolicy(max_attempts=3, retry_on=lambda error: isinstance(error, KeyError))
    clock = Clock()
    missing = Failing(clock, error=KeyError("slot"))
    with pytest.raises(KeyError):
        Retry(policy, clock=clock, sleep=clock.sleep).call(missing)
    assert missing.calls == 3
    reset = Failing(clock)  # transient by default, not by this policy
    with pytest.raises(ConnectionError):
        Retry(policy, clock=clock, sleep=clock.sleep).call(reset)
    assert reset.calls == 1


# ------------------------------------------------------------------ the deadline


def _deadline_run(takes: float, sleep: float, deadline: float = 1.0) -> tuple[int, float]:
    """Attempts made and the time used, each attempt taking `takes` s and each backoff `sleep`."""
    clock = Clock()
    failing = Failing(clock, takes=takes)
    policy = RetryPolicy(
        max_attempts=10,
        base_delay_seconds=sleep,
        max_delay_seconds=sleep,
        deadline_seconds=deadline,
    )
    started = clock.now
    with pytest.raises(ConnectionError):
        Retry(policy, rng=TopOfRange(), clock=clock, sleep=clock.sleep).call(failing)
    return failing.calls, clock.now - started


def test_a_retry_whose_sleep_would_cross_the_deadline_is_not_made() -> None:
    # 0.25 + 0.5 = 0.75: retry; 0.75 + 0.25 = 1.0, + 0.5 would end at 1.5: stop.
    assert _deadline_run(takes=0.25, sleep=0.5) == (2, 1.0)


def test_a_retry_that_would_start_exactly_at_the_deadline_is_not_made() -> None:
    assert _deadline_run(takes=0.5, sleep=0.5) == (1, 0.5)


def test_a_retry_that_would_start_just_before_the_deadline_is_made() -> None:
    # 0.5 + 0.4375 = 0.9375 < 1: one retry; it ends at 1.4375, past any further one.
    assert _deadline_run(takes=0.5, sleep=0.4375) == (2, 1.4375)


@pytest.mark.parametrize(("takes", "attempts"), [(9.5, 2), (10.0, 1)])
def test_without_a_sleep_only_the_time_used_counts(takes: float, attempts: int) -> None:
    """A draw of 0 s (full jitter may draw it): the attempt's own time decides alone."""
    clock = Clock()
    failing = Failing(clock, takes=takes)
    policy = RetryPolicy(max_attempts=2, deadline_seconds=10.0)
    with pytest.raises(ConnectionError):
        Retry(policy, rng=BottomOfRange(), clock=clock, sleep=clock.sleep).call(failing)
    assert failing.calls == attempts


def test_no_deadline_leaves_the_attempts_to_decide() -> None:
    clock = Clock()
    failing = Failing(clock, takes=1000.0)
    policy = RetryPolicy(max_attempts=4, deadline_seconds=None)
    with pytest.raises(ConnectionError):
        Retry(policy, clock=clock, sleep=clock.sleep).call(failing)
    assert failing.calls == 4


# ------------------------------------------------------------------ jitter


def test_full_jitter_reaches_the_exponential_ceiling_and_its_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=0.01, max_delay_seconds=0.05)
    assert _sleeps(policy, TopOfRange()) == pytest.approx([0.01, 0.02, 0.04, 0.05])
    assert _sleeps(policy, BottomOfRange()) == [0, 0, 0, 0]


def test_full_jitter_read_from_configuration() -> None:
    """A jitter that came from a file is an equal string, not the same object as the literal."""
    configured = json.loads('{"jitter": "full"}')["jitter"]
    policy = RetryPolicy(
        max_attempts=4, base_delay_seconds=0.01, max_delay_seconds=1.0, jitter=configured
    )
    assert _sleeps(policy, TopOfRange()) == pytest.approx([0.01, 0.02, 0.04])


def test_decorrelated_jitter_triples_the_previous_sleep_up_to_the_cap() -> None:
    policy = RetryPolicy(
        max_attempts=7, base_delay_seconds=0.01, max_delay_seconds=1.0, jitter="decorrelated"
    )
    assert _sleeps(policy, TopOfRange()) == pytest.approx([0.03, 0.09, 0.27, 0.81, 1.0, 1.0])
    assert _sleeps(policy, BottomOfRange()) == pytest.approx([0.01] * 6)


@pytest.mark.parametrize("jitter", ["full", "decorrelated"])
def test_random_draws_stay_within_the_bounds(jitter: Literal["full", "decorrelated"]) -> None:
    policy = RetryPolicy(
        max_attempts=200, base_delay_seconds=0.01, max_delay_seconds=0.05, jitter=jitter
    )
    sleeps = _sleeps(policy, random.Random(51))
    lowest = 0.01 if jitter == "decorrelated" else 0.0
    assert all(lowest <= s <= 0.05 for s in sleeps)
    assert max(sleeps) > 0.045, "199 draws come near the cap"


# ------------------------------------------------------------------ the budget


def test_the_budget_refills_with_time_and_first_attempts_up_to_its_burst() -> None:
    clock = Clock(1.0)
    budget = RetryBudget(ratio=0.5, min_per_second=2.0, burst=10.0, clock=clock)
    assert budget.available("svc") == 10.0, "a key starts full"
    for _ in range(8):
        assert budget.try_spend("svc")
    assert budget.available("svc") == 2.0
    clock.now = 3.5  # 2.5 s at 2 tokens a second
    assert budget.available("svc") == 7.0
    budget.deposit("svc")
    assert budget.available("svc") == 7.5
    clock.now = 100.0
    assert budget.available("svc") == 10.0
    budget.deposit("svc")
    assert budget.available("svc") == 10.0, "never above the burst"
    assert budget.available("other") == 10.0


def test_the_last_whole_token_is_spent_and_a_fraction_is_not() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, burst=1.0, clock=clock)
    assert budget.try_spend("svc")
    assert not budget.try_spend("svc")
    budget.deposit("svc")
    assert not budget.try_spend("svc"), "half a token"
    assert budget.available("svc") == 0.5
    budget.deposit("svc")
    assert budget.try_spend("svc"), "exactly one token"
    assert budget.available("svc") == 0.0


def test_a_retry_spends_the_budget_and_a_call_deposits_into_it() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, burst=2.0, clock=clock)
    policy = RetryPolicy(max_attempts=10)
    first = Failing(clock)
    with pytest.raises(ConnectionError):
        Retry(policy, budget=budget, budget_key="svc", clock=clock, sleep=clock.sleep).call(first)
    assert first.calls == 3, "two tokens: two retries (the deposit cannot pass the burst)"
    second = Failing(clock)
    with pytest.raises(ConnectionError):
        Retry(policy, budget=budget, budget_key="svc", clock=clock, sleep=clock.sleep).call(second)
    assert second.calls == 1, "the deposit of the second call is half a token"


# ------------------------------------------------------------------ close


def test_close_without_a_timed_attempt() -> None:
    retry = Retry()
    retry.close()
    retry.close()


def test_close_does_not_wait_for_a_stuck_attempt_and_its_thread_ends_after_it() -> None:
    release = threading.Event()
    workers: list[threading.Thread] = []

    def stuck() -> str:
        workers.append(threading.current_thread())
        release.wait(60)
        return "late"

    retry = Retry(RetryPolicy(max_attempts=1, attempt_timeout_seconds=0.01))
    with pytest.raises(AttemptTimeout):
        retry.call(stuck)
    closer = threading.Thread(target=retry.close)
    closer.start()
    closer.join(10)  # returns at once unless close() waits for the stuck attempt
    close_waited = closer.is_alive()
    release.set()
    closer.join()
    assert not close_waited, "close() waited for an attempt the caller gave up on"
    workers[0].join(10)  # ends at once after the attempt, once the pool is shut down
    assert not workers[0].is_alive(), "the attempt's thread outlived close()"


def test_close_drops_the_attempts_still_queued_behind_stuck_ones() -> None:
    """More stuck callers than the pool has threads: the attempts still queued never start."""
    release = threading.Event()
    started: list[threading.Thread] = []
    lock = threading.Lock()

    def stuck() -> str:
        with lock:
            started.append(threading.current_thread())
        release.wait(60)
        return "late"

    retry = Retry(RetryPolicy(max_attempts=1, attempt_timeout_seconds=0.05))
    outcomes: list[BaseException | str] = []

    def caller() -> None:
        try:
            outcomes.append(retry.call(stuck))
        except AttemptTimeout as error:
            outcomes.append(error)

    callers = [threading.Thread(target=caller) for _ in range(40)]  # the pool has at most 32
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert len(outcomes) == 40 and all(isinstance(o, AttemptTimeout) for o in outcomes)
    retry.close()
    release.set()
    for worker in set(started):
        worker.join(10)
    assert len(started) < 40, "attempts queued when the Retry was closed ran after all"
