"""``CircuitBreaker``: guarded calls (sync and asyncio) over the Redis or in-memory store.

A success in CLOSED costs one Redis round trip: each reply is cached per circuit for
``local_state_ttl_seconds``, and admission is served from that cache only while it says CLOSED
with zero failures; a cached OPEN rejects locally, HALF_OPEN always asks Redis. A stale
admission never corrupts the counts: outcomes count only for the generation they were admitted
in, and every transition bumps it in one script run.

Bulkhead: at most ``max_concurrent_calls`` calls of this process at once per circuit, with as
many worker threads of its own; a slot is held until the call's code has really finished (a
timed-out call still running keeps it). The slots are a list of tokens: ``list.pop``/``append``
are atomic, so taking one costs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import math
import threading
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from guard import tracing
from guard.breaker.backend import Backend, redis_url_from_env
from guard.breaker.codec import STATE, CircuitSnapshot, RecordedState, Seed, seeded_hash
from guard.breaker.listeners import (
    COLLECTOR,
    BreakerEvent,
    EventKind,
    Listener,
    Listeners,
    transition_event,
)
from guard.breaker.redis_store import REDIS_DOWN_ERRORS, SCRIPTS, CircuitArgs, StateMissingError
from guard.breaker.state import (
    ACTION_TARGET,
    Action,
    BreakerConfig,
    BulkheadFullError,
    CircuitOpenError,
    ControlUnavailableError,
    GuardedCallTimeout,
    Outcome,
    Reply,
    SharedRules,
    State,
    StoreUnavailableError,
    configure_reason,
    validate_key,
)
from guard.connection import who_acts

log = logging.getLogger("guard.breaker")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted call: the generation (and probe) its outcome belongs to."""

    generation: int
    probe_seq: int
    shared: bool
    bypass: bool = False  # nothing to report to the store
    timed: bool = True  # the call timeout applies


@dataclass(slots=True)
class _Known:
    """The last reply this process saw, and until when (monotonic s) it may be trusted."""

    # The in-memory store answers a hot success with the same reply object, which then only
    # extends ``valid_until`` (no field-by-field comparison).
    reply: Reply
    state: State  # the reply's, read on every admission
    valid_until: float
    open_until: float
    shared: bool
    # Ticket handed out by local admission (CLOSED, no failures), built once per state.
    ticket: Ticket | None


_BYPASS = Ticket(0, 0, True, bypass=True, timed=False)
# Redis unreachable and ``when_store_unreachable="closed"``: admitted, timed, not counted.
_UNCOUNTED = Ticket(0, 0, False, bypass=True)
_GENERATOR_TYPES = (types.GeneratorType, types.AsyncGeneratorType)
# Enum members as module constants: an attribute lookup is dear beside an in-memory admission.
_CLOSED, _OPEN, _FORCED_OPEN = State.CLOSED, State.OPEN, State.FORCED_OPEN
_SUCCESS, _FAILURE, _IGNORED = Outcome.SUCCESS, Outcome.FAILURE, Outcome.IGNORED
_PASS_THROUGH = (State.FORCED_CLOSED, State.DISABLED)
_perf_counter, _monotonic, _ceil = time.perf_counter, time.monotonic, math.ceil


def _refuse_generator(fn: Callable[..., Any]) -> None:
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is a generator function: a circuit breaker "
            "cannot see failures raised while it is iterated; guard the iteration with "
            "`with breaker.guard():` (or `async with`) instead"
        )


def _duration_ms(started: float) -> int:
    """Rounded up, so that a call is slow exactly when it took longer than the slow-call
    duration; 0 when the call was not timed."""
    return _ceil((_perf_counter() - started) * 1000) if started else 0


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
        self._ticket = _BYPASS
        self._timeout: asyncio.Timeout | None = None
        self._started = 0.0
        self._events = outcome_events
        self.result: Any = None

    def _start(self, ticket: Ticket) -> None:
        self._ticket = ticket
        b = self._breaker
        if self._events or b._always_timed or b.key in b._timed_keys:
            self._started = _perf_counter()

    def __enter__(self) -> GuardedBlock:
        self._breaker._take_slot()
        try:
            self._start(self._breaker.acquire())
        except BaseException:
            self._breaker._slots.append(True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        b = self._breaker
        b._slots.append(True)
        outcome = _SUCCESS if exc is None else b._failure_outcome(exc)
        b._finished(b._release(self._ticket, outcome, _duration_ms(self._started)), outcome, 0, exc)

    async def __aenter__(self) -> GuardedBlock:
        b = self._breaker
        b._take_slot()
        try:
            ticket = await b.acquire_async()
        except BaseException:
            b._slots.append(True)
            raise
        self._timeout = asyncio.timeout(b._call_timeout if ticket.timed else None)
        await self._timeout.__aenter__()
        self._start(ticket)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._timeout is not None
        b = self._breaker
        try:
            await self._timeout.__aexit__(kind, exc, tb)
        except TimeoutError as error:
            timed_out = GuardedCallTimeout(b.key, cast(float, b._call_timeout))
            await self._finish(timed_out, True)
            raise timed_out from error
        await self._finish(exc, False)

    async def _finish(self, error: BaseException | None, timed_out: bool) -> None:
        b, events = self._breaker, self._events
        b._slots.append(True)
        if error is None and events and self.result.__class__ in _GENERATOR_TYPES:
            await b._release_async(self._ticket, _IGNORED, 0)
            raise TypeError("the guarded call returned a generator; use breaker.guard()")
        if error is not None:
            outcome = b._failure_outcome(error, timed_out)
        else:
            outcome = b._result_outcome(self.result) if events else _SUCCESS
        tripped = await b._release_async(self._ticket, outcome, _duration_ms(self._started))
        listening = events and bool(b.listeners or b._shared_listeners)
        b._finished(tripped, outcome, self._started, error, timed_out, listening)


Admitted = Callable[[Callable[P, T]], Callable[P, T]]


@contextlib.contextmanager
def decision_span(breaker: CircuitBreaker) -> Iterator[Admitted[Any, Any]]:
    """The span of one traced call: the breaker's decision and the state it decided in; never
    the call's arguments or result. Yields what wraps the call to say "allowed" when run."""
    decided = False
    with tracing.span("guard.breaker.call", {"guard.breaker.key": breaker.key}) as span:

        def decide(decision: str, state: str) -> None:
            nonlocal decided
            decided = True
            span.set("guard.breaker.decision", decision)
            span.set("guard.breaker.state", state)

        def admitted(fn: Callable[P, T]) -> Callable[P, T]:
            @functools.wraps(fn)
            def run(*args: P.args, **kwargs: P.kwargs) -> T:
                seen = breaker.last_seen_state
                decide("allowed", seen.label if seen is not None else "unknown")
                return fn(*args, **kwargs)

            return run

        try:
            yield admitted
        except CircuitOpenError as error:
            if not decided:
                decide("refused", error.state.label)
                reason = "bulkhead" if isinstance(error, BulkheadFullError) else "open"
                span.set("guard.breaker.refused_because", reason)
            raise


class CircuitBreaker:
    """A per-key circuit shared by all processes through Redis (``in_memory=True``: this process
    only). The constructor never touches Redis and never raises because of it."""

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
        self.config = config = config or BreakerConfig()
        if backend is None:
            backend = Backend(None if in_memory else (redis_url or redis_url_from_env()))
        self.backend = backend
        self.listeners = Listeners(listeners)
        self._shared_listeners = backend.listeners  # the list itself (changed in place)
        self._args = CircuitArgs.build(self.key, config, backend.host, backend.pid)
        self._known: _Known | None = None
        self._result_predicates = config.has_result_predicates
        self._plain_failures = config.has_plain_failures
        self._memory = backend.memory
        self._ttl = config.local_state_ttl_seconds
        self._call_timeout = config.call_timeout_seconds
        self._unreachable_mode = config.when_store_unreachable
        self._raise_on_trip = config.raise_open_on_trip
        self._slot_count = config.max_concurrent_calls
        self._slots: list[bool] = [True] * self._slot_count
        self._free_slot: Callable[[object], None] = lambda _: self._slots.append(True)
        self._threads: ThreadPoolExecutor | None = None
        self._counter_lock = threading.Lock()
        self.rejected_open = self.rejected_bulkhead = self.rejected_store_unavailable = 0
        # Bumped only on a failure, so the success path pays nothing.
        self.failed_calls = self.timed_out_calls = self.config_divergences = 0
        # Times this process found the circuit missing from Redis and restored it.
        self.restored_states = 0
        self._on_missing_cb = self._on_missing  # bound once: it is passed on every decision
        # The last state restored from PostgreSQL: if Redis loses it again at once (still at
        # maxmemory), the outage fallback starts from it instead of from a closed circuit.
        self._last_restored: Seed | None = None
        self._rules_checked = not backend.uses_redis
        # Calls are timed for the slow-call rule: always with Redis (the clock is nothing beside
        # a round trip); in memory only for circuits whose rules judge slow calls.
        self._always_timed = backend.uses_redis
        self._timed_keys = backend.memory.timed
        COLLECTOR.track(self)

    # ------------------------------------------------------------------ introspection
    @property
    def last_seen_state(self) -> State | None:
        """Last state this process saw (None before its first decision). Not a store read."""
        return self._known.state if self._known else None

    @property
    def state(self) -> State | None:
        """The circuit's state in the store; while Redis is down, the last one this process saw."""
        if not self.backend.health.down:
            with contextlib.suppress(ControlUnavailableError):
                return self.snapshot().state
        return self.last_seen_state

    @property
    def in_flight(self) -> int:
        """Calls of this process running through the circuit now (hung ones included)."""
        return self._slot_count - len(self._slots)

    def add_listener(self, listener: Listener) -> None:
        self.listeners.add(listener)

    # ------------------------------------------------------------------ events
    def _emit(self, event: BreakerEvent) -> None:
        self.listeners.emit(event)
        self.backend.listeners.emit(event)

    def _tell(self, kind: EventKind, **fields: Any) -> None:
        """An event to the listeners, built only when there are any."""
        if not (self.listeners or self._shared_listeners):
            return
        known = self._known
        event = BreakerEvent(
            kind=kind,
            key=self.key,
            state=fields.pop("state", known.state if known else State.CLOSED),
            generation=fields.pop("generation", known.reply.generation if known else 0),
            occurred_at=fields.pop("occurred_at", datetime.now(UTC)),
            host=self.backend.host,
            pid=self.backend.pid,
            **fields,
        )
        self._emit(event)

    def _report_transition(self, reply: Reply, shared: bool, actor: str | None = None) -> None:
        if "repaired: " in reply.reason:
            log.warning(
                "circuit %s: its state in Redis held values the breaker never writes and was"
                " repaired (%s); now %s at generation %d",
                self.key,
                reply.reason,
                reply.state.label,
                reply.generation,
            )
        if not (self.listeners or self._shared_listeners):
            return  # nobody to tell: building the event was a third of a trip's cost
        # The transition happened in this very reply: "now" on the store's clock.
        occurred = datetime.fromtimestamp(reply.now_ms / 1000, UTC) if shared else datetime.now(UTC)
        b = self.backend
        event = transition_event(
            self.key, reply, occurred, b.host, b.pid, shared=shared, actor=actor
        )
        self._emit(event)

    # ------------------------------------------------------------------ cache
    def _remember(self, reply: Reply, shared: bool) -> None:
        now = _monotonic()
        known = self._known
        state = reply.state
        if known is not None and known.shared is shared:
            if known.reply is reply:
                known.valid_until = now + self._ttl  # the same constant reply: trust it longer
                return
            if reply.generation < known.reply.generation and now < known.valid_until:
                # Replies of concurrent calls are handled in any order: this one was overtaken
                # by a newer generation, and trusting it would bring back a state the circuit
                # has left. Once the newer entry expires any reply is taken, so a Redis that
                # lost its data and restarted at a lower generation is followed again.
                return
            if (
                known.state is state
                and state is not _OPEN
                and known.reply.generation == reply.generation
                and known.reply.failures == reply.failures
            ):
                known.valid_until = now + self._ttl  # nothing changed: just trust it longer
                known.reply = reply
                return
        valid_until = now + self._ttl
        open_until = 0.0
        if state is _OPEN:
            open_until = now + (reply.open_until_ms - reply.now_ms) / 1000
            valid_until = min(valid_until, open_until)
        ticket = None
        if state is _CLOSED and reply.failures == 0:
            ticket = Ticket(reply.generation, 0, shared)
        self._known = _Known(reply, state, valid_until, open_until, shared, ticket)

    def _local_admission(self) -> Ticket | None:
        """Admit or reject without a round trip when the cache allows; None = ask the store."""
        known = self._known
        if known is None:
            return None
        now = _monotonic()
        if now >= known.valid_until:
            return None
        state = known.state
        if state is _CLOSED:
            return known.ticket  # None once a failure was seen: ask the store
        if state is _OPEN or state is _FORCED_OPEN:
            self._reject(state, known.open_until - now if state is _OPEN else None)
        return _BYPASS if state in _PASS_THROUGH else None

    def _reject(self, state: State, retry_after: float | None) -> None:
        with self._counter_lock:
            self.rejected_open += 1
        self._tell(EventKind.REJECTED, state=state)
        raise CircuitOpenError(self.key, state, retry_after)

    def _take_slot(self) -> None:
        try:
            self._slots.pop()
        except IndexError:
            self._bulkhead_full()

    def _bulkhead_full(self) -> None:
        with self._counter_lock:
            self.rejected_bulkhead += 1
        state = self._known.state if self._known else _CLOSED
        self._tell(EventKind.BULKHEAD_FULL, state=state)
        raise BulkheadFullError(self.key, state, self._slot_count) from None

    def _timeout_threads(self) -> ThreadPoolExecutor:
        threads = self._threads
        if threads is None:
            with self._counter_lock:
                if self._threads is None:
                    self._threads = self.backend.timeout_threads(self.key, self._slot_count)
                threads = self._threads
        return threads

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

    def _recorded(self, reply: Reply, shared: bool) -> bool:
        # True when this very outcome opened the circuit
        self._remember(reply, shared)
        if reply.from_state >= 0:
            self._report_transition(reply, shared)
            # code 0: the outcome was not counted (a repair of the stored state moved first)
            return reply.state is _OPEN and reply.code == 1
        return False

    # ------------------------------------------------------------------ fallback
    def _redis_failed(self, error: BaseException) -> None:
        if self.backend.health.mark_down(error):
            self._tell(EventKind.REDIS_UNAVAILABLE, error=error, shared=False)
        if self._unreachable_mode != "local":
            return
        known = self._known
        restored = self._last_restored if isinstance(error, StateMissingError) else None
        cooldown_ms = self.config.cooldown_ms
        if restored is not None:
            state, generation = restored.state, restored.generation
            opened_at, remaining_ms = restored.opened_at_ms, cooldown_ms
            if opened_at:
                remaining_ms = max(0, opened_at + cooldown_ms - round(time.time() * 1000))
        elif known is None:
            state, generation, remaining_ms = State.CLOSED, 0, 0
        else:
            state, generation = known.state, known.reply.generation
            remaining_ms = round(max(0.0, known.open_until - time.monotonic()) * 1000)
        self.backend.memory.seed(self.key, state, generation, remaining_ms, cooldown_ms)

    def _redis_answered(self) -> bool:
        """Redis took a decision; True when the circuit's stored rules are still to check."""
        if self.backend.health.mark_up():
            # Redis is the truth again; per-process decisions of the outage are dropped.
            self.backend.memory.forget()
            self._tell(EventKind.REDIS_RESTORED)
        return not self._rules_checked

    def _use_redis(self) -> bool:
        return self.backend.uses_redis and self.backend.health.should_try_redis()

    def _known_generation(self) -> int:
        return self._known.reply.generation if self._known else 0

    def _without_redis(self) -> Ticket:
        """Admission while Redis cannot be asked, as ``when_store_unreachable`` says."""
        mode = self._unreachable_mode
        if mode == "local" or not self.backend.uses_redis:
            return self._admitted(self.backend.memory.acquire(self.key, self.config), False)
        if mode == "closed":
            return _UNCOUNTED
        with self._counter_lock:
            self.rejected_store_unavailable += 1
        self._tell(EventKind.REJECTED, state=State.OPEN, shared=False)
        raise StoreUnavailableError(self.key, State.OPEN, self.backend.health.retry_interval)

    def _on_missing(self, known_generation: int) -> Seed:
        """What to re-create when Redis has no state for this circuit (``Backend.restore``)."""
        known, seen = self._known, None
        if known is not None and known.shared and known.reply.generation > 0:
            seen = RecordedState(known.state, known.reply.generation, source="this process")
        seed = self.backend.restore(self.key, seen, known_generation)
        self._last_restored = seed if seed.restored else None
        if seed.restored:
            with self._counter_lock:
                self.restored_states += 1
        if seed.note:
            # The repair is an event (PostgreSQL's write-behind records it, and the row
            # moves past the one that could not be used).
            repair = Reply(1, seed.state, seed.generation, 0, 0, 0, 0, seed.state, 0, seed.note)
            b = self.backend
            self._emit(transition_event(self.key, repair, datetime.now(UTC), b.host, b.pid))
        return seed

    def _check_rules(self) -> None:  # once per circuit and process, off the hot path
        self.backend.check_redis_config()
        with contextlib.suppress(*REDIS_DOWN_ERRORS):
            stored = self.backend.sync_store.rules(self.key)
            self._rules_checked = True
            mine = self.config.shared_rules
            if stored is None or stored == mine:
                return
            with self._counter_lock:
                self.config_divergences += 1
            log.warning(
                "circuit %s: this process is configured with %s but the circuit stores %s; the"
                " stored rules apply (change them with `guard breaker configure`)",
                self.key,
                mine.text(),
                stored.text(),
            )

    # ------------------------------------------------------------------ decisions
    # A decision is the same request whether sync or from the event loop: only the store's
    # call differs (``_decide``/``_decide_async``).
    def _acquire_request(self) -> tuple[Any, ...]:
        generation = self._known_generation()
        return SCRIPTS.acquire, self._args.acquire_args(self.config, generation), generation

    def _record_request(self, ticket: Ticket, outcome: Outcome, ms: int) -> tuple[Any, ...]:
        generation = ticket.generation
        args = self._args.record_args(generation, outcome, ticket.probe_seq)
        return SCRIPTS.record, args, generation, ms

    def _decide(self, *request: Any) -> Reply | None:
        try:
            reply = self.backend.sync_store.decide(self._args, self._on_missing_cb, *request)
        except REDIS_DOWN_ERRORS as error:
            self._redis_failed(error)
            return None
        if self._redis_answered():
            self._check_rules()
        return reply

    async def _decide_async(self, *request: Any) -> Reply | None:
        try:
            b = self.backend
            decide = b.sync_store.decide_async
            reply = await decide(b.async_client(), self._args, self._on_missing_cb, *request)
        except REDIS_DOWN_ERRORS as error:
            self._redis_failed(error)
            return None
        if self._redis_answered():
            await asyncio.to_thread(self._check_rules)
        return reply

    def acquire(self) -> Ticket:
        """Admit a call or raise ``CircuitOpenError``. Pair with ``release``."""
        return self._local_admission() or self._acquire_from_store()

    def _acquire_from_store(self) -> Ticket:
        if self._use_redis() and (reply := self._decide(*self._acquire_request())):
            return self._admitted(reply, True)
        return self._without_redis()

    async def acquire_async(self) -> Ticket:
        ticket = self._local_admission()
        request = self._acquire_request
        if ticket is None and self._use_redis() and (reply := await self._decide_async(*request())):
            return self._admitted(reply, True)
        return ticket or self._without_redis()

    def release(
        self, ticket: Ticket, outcome: Outcome, elapsed_seconds: float | None = None
    ) -> bool:
        """Report an admitted call's outcome (and duration); True when it opened the circuit."""
        return self._release(
            ticket, outcome, _ceil(elapsed_seconds * 1000) if elapsed_seconds else 0
        )

    def _release(
        self, ticket: Ticket, outcome: Outcome, duration_ms: int, redis_done: bool = False
    ) -> bool:
        """Report an outcome; ``redis_done``: Redis was tried already (the asyncio path)."""
        if ticket.bypass or (outcome is _IGNORED and ticket.probe_seq == 0):
            return False  # nothing to count: no round trip
        if ticket.shared:
            if not redis_done and self._use_redis():
                reply = self._decide(*self._record_request(ticket, outcome, duration_ms))
                if reply is not None:
                    return self._recorded(reply, True)
            if self._unreachable_mode != "local":
                return False  # only the per-process mode keeps counting without Redis
        reply = self._memory.record(
            self.key, self.config, ticket.generation, outcome, ticket.probe_seq, duration_ms
        )
        known = self._known
        if known is not None and known.reply is reply:
            return False  # a quiet circuit's constant reply: nothing to remember
        return self._recorded(reply, False)

    async def _release_async(self, ticket: Ticket, outcome: Outcome, duration_ms: int) -> bool:
        counted = not ticket.bypass and (outcome is not _IGNORED or ticket.probe_seq != 0)
        if counted and ticket.shared and self._use_redis():
            request = self._record_request(ticket, outcome, duration_ms)
            if reply := await self._decide_async(*request):
                return self._recorded(reply, True)
        return self._release(ticket, outcome, duration_ms, redis_done=True)

    # ------------------------------------------------------------------ outcomes
    def _failure_outcome(self, error: BaseException, timed_out: bool = False) -> Outcome:
        """How a call that raised counts (this process's failure counters bumped)."""
        if timed_out:
            outcome = _FAILURE
        elif self._plain_failures:
            # the default classification, without its four calls (a trip's hot path)
            outcome = _FAILURE if isinstance(error, Exception) else _IGNORED
        elif isinstance(error, asyncio.CancelledError):
            # The caller gave up; hand a probe lease back without waiting on Redis forever.
            outcome = _IGNORED
        else:
            outcome = self.config.classify_exception(error)
        if outcome is _FAILURE:
            with self._counter_lock:
                if timed_out:
                    self.timed_out_calls += 1
                else:
                    self.failed_calls += 1
        return outcome

    def _result_outcome(self, result: object) -> Outcome:
        outcome = self.config.classify_result(result)
        if outcome is _FAILURE:
            with self._counter_lock:
                self.failed_calls += 1
        return outcome

    def _finished(
        self,
        tripped: bool,
        outcome: Outcome,
        started: float,
        error: BaseException | None,
        timed_out: bool = False,
        listening: bool = False,
    ) -> None:
        """After the outcome was reported: its event, and ``raise_open_on_trip``'s error."""
        if listening:
            kind = EventKind.TIMEOUT if timed_out else EventKind[outcome.name]
            self._tell(kind, elapsed_seconds=_perf_counter() - started, error=error)
        if tripped and self._raise_on_trip and error is not None:
            known, retry = self._known, None
            if known is not None and known.state is _OPEN:
                retry = max(0.0, known.open_until - _monotonic())
            raise CircuitOpenError(self.key, State.OPEN, retry) from error

    # ------------------------------------------------------------------ guarded calls
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` under the breaker; raises ``CircuitOpenError`` (or ``BulkheadFullError``)."""
        if tracing.active():
            with decision_span(self) as admitted:
                return cast(T, self._call(admitted(fn), *args, **kwargs))
        return self._call(fn, *args, **kwargs)

    def _call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            self._slots.pop()
        except IndexError:
            self._bulkhead_full()
        try:
            ticket = self._local_admission() or self._acquire_from_store()
        except BaseException:
            self._slots.append(True)
            raise
        timeout = self._call_timeout if ticket.timed else None
        # Outcome events go to the listeners present when the call started. The clock is read
        # only for them or for the slow-call rule (in memory it is a sizeable part of a call).
        listening = bool(self.listeners or self._shared_listeners)
        timed = listening or self._always_timed or self.key in self._timed_keys
        started = _perf_counter() if timed else 0.0
        try:
            if timeout is None:
                try:
                    result = fn(*args, **kwargs)
                finally:
                    self._slots.append(True)
            else:
                result = run_with_timeout(
                    self._timeout_threads(),
                    timeout,
                    lambda: GuardedCallTimeout(self.key, timeout),
                    self._free_slot,
                    fn,
                    *args,
                    **kwargs,
                )
        except BaseException as error:
            timed_out = error.__class__ is GuardedCallTimeout
            outcome = self._failure_outcome(error, timed_out)
            # _duration_ms inlined, and _finished called only when it has work: a trip's hot path
            duration = _ceil((_perf_counter() - started) * 1000) if started else 0
            tripped = self._release(ticket, outcome, duration)
            if listening or (tripped and self._raise_on_trip):
                self._finished(tripped, outcome, started, error, timed_out, listening)
            raise
        # _duration_ms inlined: this is the hot path of every guarded call
        duration = _ceil((_perf_counter() - started) * 1000) if started else 0
        if result.__class__ in _GENERATOR_TYPES:
            self._release(ticket, _IGNORED, 0)
            _refuse_generator(fn)  # raises for generator functions
            raise TypeError("the guarded call returned a generator; use breaker.guard()")
        outcome = self._result_outcome(result) if self._result_predicates else _SUCCESS
        self._release(ticket, outcome, duration)
        if listening:
            self._finished(False, outcome, started, None, False, True)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker; cancelled on timeout."""
        with contextlib.ExitStack() as stack:
            if tracing.active():
                fn = stack.enter_context(decision_span(self))(fn)
            async with GuardedBlock(self, outcome_events=True) as block:
                block.result = await fn(*args, **kwargs)
        return cast(T, block.result)

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorator: ``@breaker`` on a function or an ``async def`` (not a generator function)."""
        _refuse_generator(fn)
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
        """``with breaker.guard():`` / ``async with``: the block's exception is the outcome. Only
        the async form has the call timeout (a cancellation): a sync block cannot be interrupted."""
        return GuardedBlock(self)

    # ------------------------------------------------------------------ in-process control
    def snapshot(self) -> CircuitSnapshot:
        """The circuit as the store has it now, with this process's counters."""
        shared = self.backend.uses_redis
        with self._redis_for("read the breaker state of"):
            raw, now_ms = self._read_redis() if shared else self._memory.read_with_time(self.key)
        # the in-memory clock is monotonic: its offset from the wall clock dates the fields
        wall_offset = round(time.time() * 1000 - now_ms) if now_ms and not shared else 0
        with self._counter_lock:
            counters = (self.rejected_open, self.rejected_bulkhead, self.rejected_store_unavailable)
        return CircuitSnapshot.decode(
            self.key,
            raw,
            now_ms,
            "redis" if shared else "memory",
            known_generation=self._known_generation(),
            wall_offset_ms=wall_offset,
            counters=(self.in_flight, *counters),
        )

    def _read_redis(self) -> tuple[dict[str, str], int]:
        store = self.backend.sync_store
        raw, now_ms = store.read_with_time(self.key)
        if STATE not in raw:
            # Evicted: show (and put back) what the next decision would restore.
            seed = self._on_missing(self._known_generation())
            if seed.restored and store.seed(self._args, seed):
                raw, now_ms = store.read_with_time(self.key)
            if seed.restored and STATE not in raw:
                # Under allkeys-lru the restored hash can be evicted again at once (LRU ages
                # have a 1 s resolution); the seed is still the answer.
                raw = seeded_hash(seed.state, seed.generation, seed.opened_at_ms or now_ms)
        return raw, now_ms

    @contextlib.contextmanager
    def _redis_for(self, what: str) -> Iterator[None]:
        try:
            yield
        except REDIS_DOWN_ERRORS as error:
            raise ControlUnavailableError(
                f"cannot {what} {self.key}: Redis unreachable ({type(error).__name__})"
            ) from None

    def _changed(self, reply: Reply, actor: str) -> None:
        self._known = None  # the next decision asks the store
        self._report_transition(reply, self.backend.uses_redis, actor=actor)

    def act(self, action: Action, reason: str, *, actor: str | None = None) -> State:
        """A manual action for every process, recorded as ``guard breaker`` records it (reason
        ``"<action>: <reason>"``, actor ``user@host``); returns the new state."""
        if not reason.strip():
            raise ValueError("a reason is required")
        target, full_reason = ACTION_TARGET[action], f"{action.value}: {reason.strip()}"
        who, store = actor or who_acts(), self.backend.store
        with self._redis_for(action.value):
            reply = store.control(
                self._args, target, full_reason, who, self._known_generation(), self._on_missing
            )
        self._changed(reply, who)
        return reply.state

    def force_open(self, reason: str, *, actor: str | None = None) -> State:
        """Reject every call, in every process, until ``reset`` (``guard breaker trip``)."""
        return self.act(Action.FORCE_OPEN, reason, actor=actor)

    def force_close(self, reason: str, *, actor: str | None = None) -> State:
        """Admit every call; failures never trip it, until ``reset``."""
        return self.act(Action.FORCE_CLOSE, reason, actor=actor)

    def disable(self, reason: str, *, actor: str | None = None) -> State:
        """No breaker at all (no timeout, no counting) until ``reset``."""
        return self.act(Action.DISABLE, reason, actor=actor)

    def reset(self, reason: str, *, actor: str | None = None) -> State:
        """Back to CLOSED with zero counters (ends every manual state)."""
        return self.act(Action.RESET, reason, actor=actor)

    def configure(
        self, rules: SharedRules | None = None, *, actor: str | None = None
    ) -> SharedRules | None:
        """Store ``rules`` (default: this breaker's own) with the circuit, as ``guard breaker
        configure`` does; returns the rules it replaced (None if none)."""
        rules = rules or self.config.shared_rules
        who, store = actor or who_acts(), self.backend.store
        with self._redis_for("configure"):
            reason = configure_reason(store.rules(self.key), rules)
            generation = self._known_generation()
            previous, reply = store.configure(
                self._args, rules, reason, who, generation, self._on_missing
            )
        self._changed(reply, who)
        return previous
