"""What guarded code runs in besides ``call``: ``with breaker.guard():`` around a block, a worker
thread bounded by a timeout, and the span a traced call runs in (guard.tracing)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import time
import types
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from guard import tracing
from guard.breaker.errors import BulkheadFullError, CircuitOpenError, GuardedCallTimeout
from guard.breaker.state import Outcome

if TYPE_CHECKING:
    from guard.breaker.circuit import CircuitBreaker, Ticket

P = ParamSpec("P")
T = TypeVar("T")


def duration_ms(started: float) -> int:
    """Milliseconds since ``started``, rounded up so that a call is slow exactly when it took
    longer than the slow-call duration; 0 when the call was not timed."""
    if not started:
        return 0
    return math.ceil((time.perf_counter() - started) * 1000)


def run_with_timeout(
    threads: Executor,
    timeout: float,
    timeout_error: Callable[[], BaseException],
    on_done: Callable[[object], None] | None,
    fn: Callable[P, T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``fn(*args, **kwargs)`` on one of ``threads`` in the caller's context; raises
    ``timeout_error()`` when it has not finished within ``timeout`` seconds. A thread cannot be
    interrupted, so a call that timed out runs on: ``on_done`` is called once it has really
    finished (or could not start)."""
    context = contextvars.copy_context()
    try:
        future: Future[T] = threads.submit(lambda: context.run(fn, *args, **kwargs))
    except BaseException:
        if on_done is not None:
            on_done(None)
        raise
    if on_done is not None:
        future.add_done_callback(on_done)
    try:
        return future.result(timeout)
    except FutureTimeout:
        if future.done():
            return future.result()
        future.cancel()
        raise timeout_error() from None


class GuardedBlock:
    """One use of ``breaker.guard()`` or ``call_async`` (``outcome_events``); not reusable."""

    def __init__(self, breaker: CircuitBreaker, *, outcome_events: bool = False) -> None:
        self._breaker = breaker
        self._ticket: Ticket | None = None
        self._timeout: asyncio.Timeout | None = None
        self._started = 0.0
        self._events = outcome_events
        self.result: Any = None

    def _start_clock(self, ticket: Ticket) -> None:
        self._ticket = ticket
        breaker = self._breaker
        if self._events or breaker._always_timed or breaker.key in breaker._timed_keys:
            self._started = time.perf_counter()

    def __enter__(self) -> GuardedBlock:
        self._breaker._take_slot()
        try:
            self._start_clock(self._breaker.acquire())
        except BaseException:
            self._breaker._slots.append(True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ticket is not None
        breaker = self._breaker
        breaker._slots.append(True)
        duration = duration_ms(self._started)
        outcome = Outcome.SUCCESS if exc is None else breaker._failure_outcome(exc)
        tripped = breaker._release(self._ticket, outcome, duration)
        if exc is not None:
            breaker._after_failure(tripped, outcome, self._started, exc, False, False)

    async def __aenter__(self) -> GuardedBlock:
        breaker = self._breaker
        breaker._take_slot()
        try:
            ticket = await breaker.acquire_async()
        except BaseException:
            breaker._slots.append(True)
            raise
        seconds = breaker.config.call_timeout_seconds if ticket.timed else None
        self._timeout = asyncio.timeout(seconds)
        await self._timeout.__aenter__()
        self._start_clock(ticket)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ticket is not None and self._timeout is not None
        breaker = self._breaker
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as error:
            timed_out = GuardedCallTimeout(breaker.key, cast(float, breaker._call_timeout))
            await self._failed(self._ticket, timed_out, True)
            raise timed_out from error
        if exc is not None:
            await self._failed(self._ticket, exc, False)
            return
        breaker._slots.append(True)
        duration, outcome = duration_ms(self._started), Outcome.SUCCESS
        if self._events:
            if self.result.__class__ in (types.GeneratorType, types.AsyncGeneratorType):
                await breaker._release_async(self._ticket, Outcome.IGNORED, 0)
                raise TypeError("the guarded call returned a generator; use breaker.guard()")
            outcome = breaker.config.classify_result(self.result)
            if outcome is Outcome.FAILURE:
                breaker._count_failure(False)
        await breaker._release_async(self._ticket, outcome, duration)
        if self._events and breaker._has_listeners():
            breaker._outcome_event(outcome, self._started, None, False)

    async def _failed(self, ticket: Ticket, error: BaseException, timed_out: bool) -> None:
        breaker = self._breaker
        breaker._slots.append(True)
        duration = duration_ms(self._started)
        outcome = breaker._failure_outcome(error, timed_out)
        tripped = await breaker._release_async(ticket, outcome, duration)
        listening = self._events and breaker._has_listeners()
        breaker._after_failure(tripped, outcome, self._started, error, timed_out, listening)


class DecisionSpan:
    """The span of one traced call: the breaker's decision and the state it decided in; never
    the call's arguments or result."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._decided = False
        self._block = tracing.span("guard.breaker.call", {"guard.breaker.key": breaker.key})
        self._span = tracing.Span()

    def __enter__(self) -> DecisionSpan:
        self._span = self._block.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if not self._decided and isinstance(error, CircuitOpenError):
            self._decide("refused", error.state.label)
            reason = "bulkhead" if isinstance(error, BulkheadFullError) else "open"
            self._span.set("guard.breaker.refused_because", reason)
        return self._block.__exit__(kind, error, traceback)

    def _decide(self, decision: str, state: str) -> None:
        self._decided = True
        self._span.set("guard.breaker.decision", decision)
        self._span.set("guard.breaker.state", state)

    def admitted(self, fn: Callable[P, T]) -> Callable[P, T]:
        """``fn``, saying "allowed" when it is called (only once the call was admitted)."""

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            seen = self._breaker.last_seen_state
            self._decide("allowed", seen.label if seen is not None else "unknown")
            return fn(*args, **kwargs)

        return run
