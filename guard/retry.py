"""Retry with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, ParamSpec, TypeVar

from guard.backoff import exponential_delay
from guard.breaker.circuit import CircuitBreaker, run_with_timeout
from guard.breaker.state import CircuitOpenError

P = ParamSpec("P")
T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected

log = logging.getLogger("guard.retry")


class AttemptTimeout(TimeoutError):
    """One attempt exceeded ``attempt_timeout_seconds``."""


def describe_error(error: BaseException | None) -> str:
    """The error's type and SQLSTATE: what a log line may say of it (never its message)."""
    if error is None:
        return "no error"
    sqlstate = getattr(error, "sqlstate", None)
    return f"{type(error).__name__} (SQLSTATE {sqlstate})" if sqlstate else type(error).__name__


def is_transient(error: BaseException) -> bool:
    """Default retry predicate (a CircuitOpenError is never retried, whatever the predicate)."""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in RETRYABLE_SQLSTATES
    return isinstance(error, ConnectionError | TimeoutError)


class RetryBudget:
    """Token bucket per key: each first attempt adds ``ratio`` tokens, each retry spends one."""

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 1.0,
        burst: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def _refill(self, key: str) -> tuple[float, float]:
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.min_per_second), now

    def deposit(self, key: str) -> None:
        with self._lock:
            tokens, now = self._refill(key)
            self._buckets[key] = (min(self.burst, tokens + self.ratio), now)

    def try_spend(self, key: str) -> bool:
        with self._lock:
            tokens, now = self._refill(key)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True

    def available(self, key: str) -> float:
        with self._lock:
            return self._refill(key)[0]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_seconds: float = 0.05
    max_delay_seconds: float = 2.0
    jitter: Literal["full", "decorrelated"] = "full"
    deadline_seconds: float | None = 10.0
    attempt_timeout_seconds: float | None = None
    retry_on: Callable[[BaseException], bool] = field(default=is_transient)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.jitter not in ("full", "decorrelated"):
            raise ValueError("jitter must be 'full' or 'decorrelated'")


class _Run:
    """One guarded call's attempts: whether, and after what sleep, the next one comes."""

    def __init__(self, retry: Retry) -> None:
        # A guarded call begins: it pays into the retry budget, and its deadline runs from now.
        if retry.budget is not None:
            retry.budget.deposit(retry.budget_key)
        self.retry = retry
        self.started = retry._clock()
        self.attempts = 0
        self.previous = retry.policy.base_delay_seconds  # decorrelated jitter's last sleep

    def sleep_before_next(self, error: Exception) -> float | None:
        """The sleep before the next attempt; None: give up (the caller raises `error`)."""
        self.attempts += 1
        retry, policy = self.retry, self.retry.policy
        if isinstance(error, CircuitOpenError) or not policy.retry_on(error):
            return None
        if policy.jitter == "full":
            ceiling = exponential_delay(
                self.attempts, policy.base_delay_seconds, policy.max_delay_seconds
            )
            delay = retry._rng.uniform(0, ceiling)
        else:
            upper = max(policy.base_delay_seconds, self.previous * 3)
            delay = min(
                policy.max_delay_seconds, retry._rng.uniform(policy.base_delay_seconds, upper)
            )
            self.previous = delay
        # The budget is checked last, so a retry spends a token only if it will really happen.
        deadline = policy.deadline_seconds
        if self.attempts >= policy.max_attempts:
            reason = f"{policy.max_attempts} attempts made"
        elif deadline is not None and retry._clock() - self.started + delay >= deadline:
            reason = f"the next attempt would end after {deadline:g} s"  # never slept past
        elif retry.budget is not None and not retry.budget.try_spend(retry.budget_key):
            reason = "the retry budget is spent"
        else:
            log.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.3f s",
                retry.budget_key,
                self.attempts,
                policy.max_attempts,
                describe_error(error),
                delay,
            )
            return delay
        log.warning(
            "%s: giving up after attempt %d (%s): %s",
            retry.budget_key,
            self.attempts,
            describe_error(error),
            reason,
        )
        return None


class Retry:
    """Retries ``fn`` under ``policy``; with ``breaker`` every attempt goes through it."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
        budget_key: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.breaker = breaker
        self.budget = budget
        self.budget_key = budget_key or (breaker.key if breaker else "default")
        # Jitter only spreads retries in time; it is not a security decision.
        self._rng = rng or random.Random()  # noqa: S311
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def _attempt_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        timeout = self.policy.attempt_timeout_seconds
        if self.breaker is not None:
            return self.breaker.call(fn, *args, **kwargs)
        if timeout is None:
            return fn(*args, **kwargs)
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(thread_name_prefix="guard-retry-attempt")
        return run_with_timeout(
            self._executor,
            timeout,
            lambda: AttemptTimeout(f"attempt exceeded {timeout:g} s"),
            None,
            fn,
            *args,
            **kwargs,
        )

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        run = _Run(self)
        while True:
            try:
                return self._attempt_sync(fn, *args, **kwargs)
            except Exception as error:
                delay = run.sleep_before_next(error)
                if delay is None:
                    raise
            self._sleep(delay)

    async def _attempt_async(
        self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self.breaker is not None:
            return await self.breaker.call_async(fn, *args, **kwargs)
        timeout = self.policy.attempt_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return await fn(*args, **kwargs)
        except TimeoutError as error:
            raise AttemptTimeout(f"attempt exceeded {timeout:g} s") from error

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        run = _Run(self)
        while True:
            try:
                return await self._attempt_async(fn, *args, **kwargs)
            except Exception as error:
                delay = run.sleep_before_next(error)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
