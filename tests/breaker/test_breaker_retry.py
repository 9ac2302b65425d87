"""guard.retry: backoff, limits, predicates, budget, and its interplay with the breaker."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Literal

import psycopg
import pytest

from guard.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError
from guard.retry import AttemptTimeout, Retry, RetryBudget, RetryPolicy, is_transient


class Flaky:
    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.error = error or ConnectionError("reset by peer")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def _pg_error(sqlstate: str) -> psycopg.Error:
    error_class = psycopg.errors.lookup(sqlstate)
    return error_class("simulated")


def test_retries_until_success_within_attempt_limit() -> None:
    flaky = Flaky(2)
    policy = RetryPolicy(max_attempts=3, base_delay_seconds=0.001)
    assert Retry(policy).call(flaky) == "ok"
    assert flaky.calls == 3


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    flaky = Flaky(10)
    with pytest.raises(ConnectionError):
        Retry(RetryPolicy(max_attempts=4, base_delay_seconds=0.001)).call(flaky)
    assert flaky.calls == 4


def test_every_retry_and_the_give_up_are_logged_without_the_errors_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = Flaky(10, _pg_error("40P01"))
    flaky.error.args = ("deadlock on the call of +49 30 1234567",)
    caplog.set_level("WARNING", logger="guard.retry")
    with pytest.raises(psycopg.errors.DeadlockDetected):
        Retry(RetryPolicy(max_attempts=3, base_delay_seconds=0.001), budget_key="calendar").call(
            flaky
        )
    lines = [record.getMessage() for record in caplog.records if record.name == "guard.retry"]
    assert [line.split(" (", 1)[0] for line in lines] == [
        "calendar: attempt 1 of 3 failed",
        "calendar: attempt 2 of 3 failed",
        "calendar: giving up after attempt 3",
    ]
    assert all("DeadlockDetected (SQLSTATE 40P01)" in line for line in lines)
    assert lines[-1].endswith("3 attempts made")
    assert not any("1234567" in line for line in lines)


def test_a_first_success_and_a_business_error_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="guard.retry")
    assert Retry(RetryPolicy(base_delay_seconds=0.001)).call(Flaky(0)) == "ok"
    with pytest.raises(psycopg.errors.UniqueViolation):
        Retry(RetryPolicy(base_delay_seconds=0.001)).call(Flaky(1, _pg_error("23505")))
    assert [r for r in caplog.records if r.name == "guard.retry"] == []


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_postgres_serialization_failure_and_deadlock_are_retried(sqlstate: str) -> None:
    flaky = Flaky(1, _pg_error(sqlstate))
    assert Retry(RetryPolicy(base_delay_seconds=0.001)).call(flaky) == "ok"


def test_other_errors_are_not_retried() -> None:
    flaky = Flaky(1, _pg_error("23505"))  # unique violation: a business answer
    with pytest.raises(psycopg.errors.UniqueViolation):
        Retry(RetryPolicy(base_delay_seconds=0.001)).call(flaky)
    assert flaky.calls == 1
    assert not is_transient(ValueError("bad input"))


# The deadline, on a clock the test moves: tests/unit/test_retry_policy.py.


@pytest.mark.parametrize("jitter", ["full", "decorrelated"])
def test_backoff_stays_within_bounds(jitter: Literal["full", "decorrelated"]) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(
        max_attempts=6, base_delay_seconds=0.01, max_delay_seconds=0.05, jitter=jitter
    )
    retry = Retry(policy, rng=random.Random(7), sleep=sleeps.append)
    with pytest.raises(ConnectionError):
        retry.call(Flaky(100))
    assert len(sleeps) == 5
    assert all(0 <= s <= 0.05 for s in sleeps)
    if jitter == "decorrelated":
        assert all(s >= 0.01 for s in sleeps)


def test_attempt_timeout_sync_and_async() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay_seconds=0.001, attempt_timeout_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(AttemptTimeout):
        Retry(policy).call(time.sleep, 1)
    assert time.monotonic() - started < 0.9

    async def slow() -> None:
        await asyncio.sleep(1)

    started = time.monotonic()
    with pytest.raises(AttemptTimeout):
        asyncio.run(Retry(policy).call_async(slow))
    assert time.monotonic() - started < 0.9


def test_retry_budget_limits_retries_per_key() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, burst=2.0)
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=0.001)
    first = Flaky(100)
    with pytest.raises(ConnectionError):
        Retry(policy, budget=budget, budget_key="svc:1").call(first)
    assert first.calls == 3  # 1 attempt + the 2 retries the budget had
    second = Flaky(100)
    with pytest.raises(ConnectionError):
        Retry(policy, budget=budget, budget_key="svc:1").call(second)
    assert second.calls == 1  # budget spent: no retries
    other_key = Flaky(1)
    assert Retry(policy, budget=budget, budget_key="svc:2").call(other_key) == "ok"


def test_never_retries_an_open_circuit(redis_url: str, key: str) -> None:
    breaker = CircuitBreaker(
        key, BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None), redis_url=redis_url
    )
    flaky = Flaky(100)
    retry = Retry(RetryPolicy(max_attempts=10, base_delay_seconds=0.001), breaker=breaker)
    with pytest.raises(CircuitOpenError):
        retry.call(flaky)
    assert flaky.calls == 3  # the breaker opened at the threshold; no retry after that

    async def run() -> str:
        async def ok() -> str:
            return "ok"

        return await retry.call_async(ok)

    with pytest.raises(CircuitOpenError):
        asyncio.run(run())
