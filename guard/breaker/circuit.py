"""``CircuitBreaker``: guarded calls (sync and asyncio) over the Redis or in-memory store.

How a successful call in CLOSED costs one Redis round trip
---------------------------------------------------------
Every reply from Redis (admission, outcome or manual action) carries the circuit's state,
generation and failure count; the breaker keeps the last one in a tiny per-circuit cache.

* Admission is served from that cache only when it says CLOSED *with zero consecutive
  failures* and is younger than ``local_state_ttl_seconds`` (1 s). The call then costs exactly
  one round trip: recording its outcome, whose reply refreshes the cache.
* As soon as a process has seen a failure (failures > 0), or the cache says HALF_OPEN or is
  older than the TTL, admission is one ``ACQUIRE`` script in Redis. HALF_OPEN therefore always
  goes to Redis, where the probe lease admits exactly one caller across all processes.
* A cache saying OPEN (or FORCED_OPEN) rejects locally until the cooldown ends — but for at
  most the TTL, so that a manual reset reaches every process within a second.

Consistency argument. Outcomes are counted in Redis atomically and only for the generation the
call was admitted in, so a stale admission can never corrupt the counts or cause a second
transition: every transition bumps the generation, and exactly one script execution performs
it (Redis runs scripts one at a time); that caller alone reports it. The only effect of serving
admission from the cache is that a process whose last reply said "CLOSED, 0 failures" may start
one call per concurrent caller after another process has opened the circuit and before its own
next reply tells it so: the dependency sees at most ``threshold`` failures plus the calls that
were in flight (admitted under the old state), which is the bound a breaker can give anyway.
Once the dependency fails, failures > 0 makes every further admission go through Redis.

Sync timeout: with ``call_timeout_seconds`` set, a sync call runs on a worker thread and the
caller stops waiting after the timeout (the call is counted as a failure; the thread finishes
in the background — for PostgreSQL work also set ``statement_timeout``, see
``statement_timeout``). With ``None`` the call runs on the caller's thread. asyncio calls are
cancelled on timeout.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from guard.breaker.backend import Backend, redis_url_from_env
from guard.breaker.listeners import BreakerEvent, EventKind, Listener, Listeners
from guard.breaker.redis_store import REDIS_DOWN_ERRORS, CircuitArgs
from guard.breaker.state import BreakerConfig, Outcome, Reply, State, validate_key

P = ParamSpec("P")
T = TypeVar("T")


class CircuitOpenError(Exception):
    """The circuit rejected the call; the dependency was not called."""

    def __init__(self, key: str, state: State, retry_after: float | None) -> None:
        # The message is built only when printed: rejections are on the hot path.
        super().__init__(key, state, retry_after)
        self.key = key
        self.state = state
        self.retry_after = retry_after

    def __str__(self) -> str:
        hint = f"; retry in {self.retry_after:.1f} s" if self.retry_after is not None else ""
        return f"circuit {self.key} is {self.state.label}{hint}"


class GuardedCallTimeout(TimeoutError):
    """The guarded call did not finish within ``call_timeout_seconds`` (counted a failure)."""

    def __init__(self, key: str, timeout: float) -> None:
        self.key = key
        self.timeout = timeout
        super().__init__(f"call guarded by circuit {key} timed out after {timeout:g} s")


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted call: the generation (and probe) its outcome belongs to."""

    generation: int
    probe_seq: int
    shared: bool
    bypass: bool = False


@dataclass(slots=True)
class _Known:
    """The last state this process saw, with how long it may be trusted (monotonic s)."""

    state: State
    generation: int
    failures: int
    valid_until: float
    open_until: float
    shared: bool
    # Ticket handed out by local admission (CLOSED, no failures), built once per state.
    ticket: Ticket | None = None
    # The reply this entry was built from: the in-memory store answers a hot success with the
    # same object, which then only extends ``valid_until`` (no field-by-field comparison).
    reply: Reply | None = None


_BYPASS = Ticket(0, 0, True, bypass=True)
# Enum members as module constants: on CPython 3.11 ``State.CLOSED`` is a class attribute
# lookup (~150 ns here), more than the rest of an in-memory admission.
_CLOSED = State.CLOSED
_OPEN = State.OPEN
_FORCED_OPEN = State.FORCED_OPEN
_SUCCESS = Outcome.SUCCESS
_IGNORED = Outcome.IGNORED
_PASS_THROUGH = (State.FORCED_CLOSED, State.DISABLED)


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class CircuitBreaker:
    """A per-key circuit shared by all processes through Redis.

    ``redis_url``: defaults to ``$GUARD_REDIS_URL`` or ``redis://127.0.0.1:6379/0``; pass
    ``in_memory=True`` for a per-process breaker. Breakers of a ``BreakerRegistry`` share one
    ``Backend``. The constructor never touches Redis and never raises because of it.
    """

    def __init__(
        self,
        key: str,
        config: BreakerConfig | None = None,
        *,
        redis_url: str | None = None,
        in_memory: bool = False,
        backend: Backend | None = None,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.key = validate_key(key)
        self.config = config or BreakerConfig()
        if backend is None:
            backend = Backend(None if in_memory else (redis_url or redis_url_from_env()))
        self.backend = backend
        self.listeners = Listeners(listeners)
        self._args = CircuitArgs.build(self.key, self.config, backend.host, backend.pid)
        self._known: _Known | None = None
        self._result_predicates = self.config.has_result_predicates
        self._memory = backend.memory
        self._ttl = self.config.local_state_ttl_seconds
        self._call_timeout = self.config.call_timeout_seconds

    # ------------------------------------------------------------------ introspection
    @property
    def state(self) -> State | None:
        """Last state this process saw (None before the first decision). Not a Redis read."""
        return self._known.state if self._known else None

    def add_listener(self, listener: Listener) -> None:
        self.listeners.add(listener)

    # ------------------------------------------------------------------ events
    def _emit(self, event: BreakerEvent) -> None:
        self.listeners.emit(event)
        self.backend.listeners.emit(event)

    def _has_listeners(self) -> bool:
        return bool(self.listeners._listeners or self.backend.listeners._listeners)

    def _event(self, kind: EventKind, **fields: Any) -> BreakerEvent:
        known = self._known
        return BreakerEvent(
            kind=kind,
            key=self.key,
            state=fields.pop("state", known.state if known else State.CLOSED),
            generation=fields.pop("generation", known.generation if known else 0),
            occurred_at=fields.pop("occurred_at", datetime.now(UTC)),
            host=self.backend.host,
            pid=self.backend.pid,
            **fields,
        )

    def _report_transition(self, reply: Reply, shared: bool, actor: str | None = None) -> None:
        opened_at = None
        if reply.state is State.OPEN:
            opened_at = _ms_to_datetime(reply.open_until_ms - self.config.cooldown_ms)
        if not shared:
            opened_at = datetime.now(UTC) if reply.state.rejects else None
        occurred = _ms_to_datetime(reply.now_ms) if shared else datetime.now(UTC)
        self._emit(
            self._event(
                EventKind.TRANSITION,
                state=reply.state,
                generation=reply.generation,
                occurred_at=occurred,
                shared=shared,
                from_state=State(reply.from_state),
                reason=reply.reason,
                failure_count=reply.failures,
                success_count=reply.successes,
                actor=actor,
                opened_at=opened_at,
            )
        )

    # ------------------------------------------------------------------ cache
    def _remember(self, reply: Reply, shared: bool) -> None:
        now = time.monotonic()
        known = self._known
        if known is not None and known.reply is reply and known.shared is shared:
            known.valid_until = now + self._ttl  # the same constant reply: trust it longer
            return
        if (
            known is not None
            and reply.generation < known.generation
            and known.shared is shared
            and now < known.valid_until
        ):
            # Replies of concurrent calls (threads, tasks) are handled in any order: this one
            # was overtaken by a newer generation, and trusting it would bring back a state
            # the circuit has left (a stale "closed" admitting calls to an open circuit).
            # Once the newer entry expires any reply is taken, so a Redis that lost its data
            # and restarted at a lower generation is followed again.
            return
        valid_until = now + self._ttl
        state = reply.state
        if state is _OPEN:
            open_until = now + (reply.open_until_ms - reply.now_ms) / 1000
            valid_until = min(valid_until, open_until)
        elif (
            known is not None
            and known.state is state
            and known.generation == reply.generation
            and known.failures == reply.failures
            and known.shared is shared
        ):
            known.valid_until = valid_until  # nothing changed: just trust it longer
            known.reply = reply
            return
        else:
            open_until = 0.0
        ticket = None
        if state is _CLOSED and reply.failures == 0:
            ticket = Ticket(reply.generation, 0, shared)
        self._known = _Known(
            state, reply.generation, reply.failures, valid_until, open_until, shared, ticket, reply
        )

    def _local_admission(self) -> Ticket | None:
        """Admit or reject without a round trip when the cache allows; None = ask the store."""
        known = self._known
        if known is None:
            return None
        now = time.monotonic()
        if now >= known.valid_until:
            return None
        state = known.state
        if state is _CLOSED:
            return known.ticket  # None once a failure was seen: ask the store
        if state is _OPEN or state is _FORCED_OPEN:
            retry = known.open_until - now if state is _OPEN else None
            self._reject(state, retry)
        if state in _PASS_THROUGH:
            return _BYPASS
        return None

    def _reject(self, state: State, retry_after: float | None) -> None:
        if self._has_listeners():
            self._emit(self._event(EventKind.REJECTED, state=state))
        raise CircuitOpenError(self.key, state, retry_after)

    def _admitted(self, reply: Reply, shared: bool) -> Ticket:
        self._remember(reply, shared)
        if reply.transitioned:
            self._report_transition(reply, shared)
        if reply.code == 0:
            retry = None
            if reply.state is State.OPEN:
                retry = max(0.0, (reply.open_until_ms - reply.now_ms) / 1000)
            self._reject(reply.state, retry)
        if reply.state in _PASS_THROUGH:
            return _BYPASS
        return Ticket(reply.generation, reply.probe_seq if reply.code == 2 else 0, shared)

    def _recorded(self, reply: Reply, shared: bool) -> None:
        self._remember(reply, shared)
        if reply.from_state >= 0:
            self._report_transition(reply, shared)

    # ------------------------------------------------------------------ fallback
    def _redis_failed(self, error: BaseException) -> None:
        if self.backend.health.mark_down(error) and self._has_listeners():
            self._emit(self._event(EventKind.REDIS_UNAVAILABLE, error=error, shared=False))
        known = self._known
        if known is None:
            self.backend.memory.seed(self.key, State.CLOSED, 0, 0)
        else:
            remaining = max(0.0, known.open_until - time.monotonic())
            self.backend.memory.seed(
                self.key, known.state, known.generation, round(remaining * 1000)
            )

    def _redis_succeeded(self) -> None:
        if self.backend.health.mark_up():
            # Redis is the truth again; per-process decisions of the outage are dropped.
            self.backend.memory.forget()
            if self._has_listeners():
                self._emit(self._event(EventKind.REDIS_RESTORED))

    def _use_redis(self) -> bool:
        return self.backend.uses_redis and self.backend.health.should_try_redis()

    def _known_generation(self) -> int:
        return self._known.generation if self._known else 0

    # ------------------------------------------------------------------ sync decisions
    def acquire(self) -> Ticket:
        """Admit a call or raise ``CircuitOpenError``. Pair with ``release``."""
        ticket = self._local_admission()
        if ticket is not None:
            return ticket
        if self._use_redis():
            try:
                reply = self.backend.sync_store.acquire(
                    self._args, self.config, self._known_generation()
                )
            except REDIS_DOWN_ERRORS as error:
                self._redis_failed(error)
            else:
                self._redis_succeeded()
                return self._admitted(reply, True)
        return self._admitted(self.backend.memory.acquire(self.key, self.config), False)

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        """Report the outcome of an admitted call."""
        if ticket.bypass or (outcome is _IGNORED and ticket.probe_seq == 0):
            return  # nothing to count: no round trip
        if ticket.shared and self._use_redis():
            try:
                reply = self.backend.sync_store.record(
                    self._args, ticket.generation, outcome, ticket.probe_seq
                )
            except REDIS_DOWN_ERRORS as error:
                self._redis_failed(error)
            else:
                self._redis_succeeded()
                self._recorded(reply, True)
                return
        reply = self._memory.record(
            self.key, self.config, ticket.generation, outcome, ticket.probe_seq
        )
        self._recorded(reply, False)

    # ------------------------------------------------------------------ async decisions
    async def acquire_async(self) -> Ticket:
        ticket = self._local_admission()
        if ticket is not None:
            return ticket
        if self._use_redis():
            try:
                reply = await self.backend.async_store().acquire(
                    self._args, self.config, self._known_generation()
                )
            except REDIS_DOWN_ERRORS as error:
                self._redis_failed(error)
            else:
                self._redis_succeeded()
                return self._admitted(reply, True)
        return self._admitted(self.backend.memory.acquire(self.key, self.config), False)

    async def release_async(self, ticket: Ticket, outcome: Outcome) -> None:
        if ticket.bypass or (outcome is _IGNORED and ticket.probe_seq == 0):
            return
        if ticket.shared and self._use_redis():
            try:
                reply = await self.backend.async_store().record(
                    self._args, ticket.generation, outcome, ticket.probe_seq
                )
            except REDIS_DOWN_ERRORS as error:
                self._redis_failed(error)
            else:
                self._redis_succeeded()
                self._recorded(reply, True)
                return
        reply = self._memory.record(
            self.key, self.config, ticket.generation, outcome, ticket.probe_seq
        )
        self._recorded(reply, False)

    # ------------------------------------------------------------------ outcome bookkeeping
    def _outcome_event(
        self, outcome: Outcome, started: float, error: BaseException | None, timed_out: bool
    ) -> None:
        if timed_out:
            kind = EventKind.TIMEOUT
        else:
            kind = {
                Outcome.SUCCESS: EventKind.SUCCESS,
                Outcome.FAILURE: EventKind.FAILURE,
                Outcome.IGNORED: EventKind.IGNORED,
            }[outcome]
        self._emit(self._event(kind, elapsed_seconds=time.perf_counter() - started, error=error))

    # ------------------------------------------------------------------ guarded calls
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` under the breaker (sync). Raises ``CircuitOpenError`` when open."""
        ticket = self.acquire()
        timeout = None if ticket.bypass else self._call_timeout
        # Outcome events go to the listeners present when the call started; without any, the
        # clock is not read (a tenth of an in-memory call).
        listening = self._has_listeners()
        started = time.perf_counter() if listening else 0.0
        try:
            if timeout is None:
                result = fn(*args, **kwargs)
            else:
                context = contextvars.copy_context()
                future: Future[T] = self.backend.executor.submit(
                    lambda: context.run(fn, *args, **kwargs)
                )
                try:
                    result = future.result(timeout)
                except FutureTimeout:
                    if not future.done():
                        future.cancel()
                        raise GuardedCallTimeout(self.key, timeout) from None
                    result = future.result()
        except GuardedCallTimeout as error:
            self.release(ticket, Outcome.FAILURE)
            if listening:
                self._outcome_event(Outcome.FAILURE, started, error, True)
            raise
        except BaseException as error:
            outcome = self.config.classify_exception(error)
            self.release(ticket, outcome)
            if listening:
                self._outcome_event(outcome, started, error, False)
            raise
        outcome = self.config.classify_result(result) if self._result_predicates else _SUCCESS
        self.release(ticket, outcome)
        if listening:
            self._outcome_event(outcome, started, None, False)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker; cancelled on timeout."""
        ticket = await self.acquire_async()
        timeout = None if ticket.bypass else self.config.call_timeout_seconds
        started = time.perf_counter()
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                result = await fn(*args, **kwargs)
        except TimeoutError as error:
            if deadline.expired():
                await self.release_async(ticket, Outcome.FAILURE)
                timed_out = GuardedCallTimeout(self.key, cast(float, timeout))
                if self._has_listeners():
                    self._outcome_event(Outcome.FAILURE, started, timed_out, True)
                raise timed_out from error
            await self._settle_async(ticket, error, started)
            raise
        except BaseException as error:
            await self._settle_async(ticket, error, started)
            raise
        outcome = self.config.classify_result(result)
        await self.release_async(ticket, outcome)
        if self._has_listeners():
            self._outcome_event(outcome, started, None, False)
        return result

    async def _settle_async(self, ticket: Ticket, error: BaseException, started: float) -> None:
        outcome = self.config.classify_exception(error)
        if isinstance(error, asyncio.CancelledError):
            # The caller gave up; hand a probe lease back without waiting on Redis forever.
            outcome = Outcome.IGNORED
        await self.release_async(ticket, outcome)
        if self._has_listeners():
            self._outcome_event(outcome, started, error, False)

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorator: ``@breaker`` on a function or an ``async def``."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call_async(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def guard(self) -> GuardedBlock:
        """``with breaker.guard():`` / ``async with breaker.guard():``.

        The block's exception (or its absence) is the outcome. The async form enforces the
        call timeout by cancellation; the sync form cannot interrupt a block, so it has no
        timeout (use ``call`` for that).
        """
        return GuardedBlock(self)


class GuardedBlock:
    """One use of ``breaker.guard()``; not reusable."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._ticket: Ticket | None = None
        self._timeout: asyncio.Timeout | None = None

    def __enter__(self) -> GuardedBlock:
        self._ticket = self._breaker.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ticket is not None
        outcome = Outcome.SUCCESS if exc is None else self._breaker.config.classify_exception(exc)
        self._breaker.release(self._ticket, outcome)

    async def __aenter__(self) -> GuardedBlock:
        self._ticket = await self._breaker.acquire_async()
        seconds = None if self._ticket.bypass else self._breaker.config.call_timeout_seconds
        self._timeout = asyncio.timeout(seconds)
        await self._timeout.__aenter__()
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
            await breaker.release_async(self._ticket, Outcome.FAILURE)
            seconds = cast(float, breaker.config.call_timeout_seconds)
            raise GuardedCallTimeout(breaker.key, seconds) from error
        if exc is None:
            outcome = Outcome.SUCCESS
        elif isinstance(exc, asyncio.CancelledError):
            outcome = Outcome.IGNORED
        else:
            outcome = breaker.config.classify_exception(exc)
        await breaker.release_async(self._ticket, outcome)
