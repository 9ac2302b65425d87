"""``CircuitBreaker``: guarded calls (sync and asyncio) over the Redis or in-memory store.

A success in CLOSED costs one Redis round trip: each reply (state, generation, failures) is
cached per circuit for ``local_state_ttl_seconds``, and admission is served from that cache only
while it says CLOSED with zero failures; a cached OPEN rejects locally, HALF_OPEN always asks
Redis. A stale admission can never corrupt the counts: outcomes count only for the generation
they were admitted in, and every transition bumps it in exactly one script run. At worst a
process starts one call per concurrent caller after another process opened the circuit.

Bulkhead: at most ``max_concurrent_calls`` calls of this process at once per circuit, with as
many worker threads of its own; a slot is held until the call's code has really finished (a
timed-out call still running keeps it), so a hung dependency never delays another circuit. The
slots are a list of tokens: ``list.pop``/``append`` are atomic, so taking one costs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import inspect
import logging
import math
import socket
import threading
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast, overload

from guard import tracing
from guard.breaker import telemetry
from guard.breaker.backend import Backend, redis_url_from_env
from guard.breaker.codec import STATE, CircuitSnapshot, seeded_hash
from guard.breaker.errors import (
    BulkheadFullError,
    CircuitOpenError,
    ControlUnavailableError,
    GuardedCallTimeout,
    StoreUnavailableError,
)
from guard.breaker.guarded import DecisionSpan, GuardedBlock, run_with_timeout
from guard.breaker.listeners import (
    BreakerEvent,
    EventKind,
    Listener,
    Listeners,
    transition_event,
)
from guard.breaker.redis_store import (
    REDIS_DOWN_ERRORS,
    SCRIPTS,
    CircuitArgs,
    Script,
    StateMissingError,
)
from guard.breaker.state import (
    ACTION_TARGET,
    Action,
    BreakerConfig,
    Outcome,
    Reply,
    SharedRules,
    State,
    configure_reason,
    validate_key,
)
from guard.breaker.stored import RecordedState, Seed, seed_for

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
    """The last state this process saw, and until when (monotonic s) it may be trusted."""

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


_BYPASS = Ticket(0, 0, True, bypass=True, timed=False)
# Redis unreachable and ``when_store_unreachable="closed"``: admitted, timed, not counted.
_UNCOUNTED = Ticket(0, 0, False, bypass=True)
_GENERATOR_TYPES = (types.GeneratorType, types.AsyncGeneratorType)
# Enum members as module constants: ``State.CLOSED`` is a class attribute lookup, dearer than
# the rest of an in-memory admission.
_CLOSED = State.CLOSED
_OPEN = State.OPEN
_FORCED_OPEN = State.FORCED_OPEN
_SUCCESS = Outcome.SUCCESS
_FAILURE = Outcome.FAILURE
_IGNORED = Outcome.IGNORED
_PASS_THROUGH = (State.FORCED_CLOSED, State.DISABLED)


_perf_counter = time.perf_counter
_monotonic = time.monotonic
_ceil = math.ceil


def _refuse_generator(fn: Callable[..., Any]) -> None:
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is a generator function: a circuit breaker "
            "cannot see failures raised while it is iterated; guard the iteration with "
            "`with breaker.guard():` (or `async with`) instead"
        )


def default_actor() -> str:
    """Who a manual action is recorded as: ``user@host``, as the CLI records it."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


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
        self.config = config or BreakerConfig()
        if backend is None:
            backend = Backend(None if in_memory else (redis_url or redis_url_from_env()))
        self.backend = backend
        self.listeners = Listeners(listeners)
        # The listener lists themselves (changed in place): asked on every call.
        self._own_listeners = self.listeners._listeners
        self._shared_listeners = backend.listeners._listeners
        self._args = CircuitArgs.build(self.key, self.config, backend.host, backend.pid)
        self._known: _Known | None = None
        self._result_predicates = self.config.has_result_predicates
        self._plain_failures = self.config.has_plain_failures
        self._memory = backend.memory
        self._ttl = self.config.local_state_ttl_seconds
        self._call_timeout = self.config.call_timeout_seconds
        self._unreachable_mode = self.config.when_store_unreachable
        self._raise_on_trip = self.config.raise_open_on_trip
        # Bulkhead: one token per call allowed in flight (see the module docstring).
        self._slot_count = self.config.max_concurrent_calls
        self._slots: list[bool] = [True] * self._slot_count
        self._free_slot: Callable[[object], None] = lambda _: self._slots.append(True)
        self._threads: ThreadPoolExecutor | None = None
        self._counter_lock = threading.Lock()
        self.rejected_open = 0
        self.rejected_bulkhead = 0
        self.rejected_store_unavailable = 0
        # Bumped only on a failure, so the success path pays nothing.
        self.failed_calls = 0
        self.timed_out_calls = 0
        self.config_divergences = 0
        # Times this process found the circuit missing from Redis and restored it (stored.py).
        self.restored_states = 0
        self._on_missing_cb = self._on_missing  # bound once: it is passed on every decision
        # The last state restored from PostgreSQL: if Redis loses it again at once (still at
        # maxmemory), the outage fallback starts from it instead of from a closed circuit.
        self._last_restored: Seed | None = None
        self._rules_checked = not backend.uses_redis
        # Calls are timed for the slow-call rule: always with Redis (the stored rules decide, and
        # the clock is nothing beside a round trip); in memory only for circuits whose rules
        # judge slow calls (the memory store keeps that set).
        self._always_timed = backend.uses_redis
        self._timed_keys = backend.memory.timed
        telemetry.COLLECTOR.track(self)

    # ------------------------------------------------------------------ introspection
    @property
    def last_seen_state(self) -> State | None:
        """Last state this process saw (None before its first decision). Not a store read."""
        return self._known.state if self._known else None

    @property
    def state(self) -> State | None:
        """The circuit's state in the store; while Redis is down, the last one this process saw."""
        if self.backend.health.down:
            return self.last_seen_state
        try:
            return self.snapshot().state
        except ControlUnavailableError:
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

    def _has_listeners(self) -> bool:
        return bool(self._own_listeners or self._shared_listeners)

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
        if "repaired: " in reply.reason:
            log.warning(
                "circuit %s: its state in Redis held values the breaker never writes and was"
                " repaired (%s); now %s at generation %d",
                self.key,
                reply.reason,
                reply.state.label,
                reply.generation,
            )
        if not self._has_listeners():
            return  # nobody to tell: building the event was a third of a trip's cost
        # The transition happened in this very reply: "now" on the store's clock.
        occurred = datetime.fromtimestamp(reply.now_ms / 1000, UTC) if shared else datetime.now(UTC)
        backend = self.backend
        event = transition_event(
            self.key, reply, occurred, backend.host, backend.pid, shared=shared, actor=actor
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
            if reply.generation < known.generation and now < known.valid_until:
                # Replies of concurrent calls (threads, tasks) are handled in any order: this
                # one was overtaken by a newer generation, and trusting it would bring back a
                # state the circuit has left (a stale "closed" admitting calls to an open
                # circuit). Once the newer entry expires any reply is taken, so a Redis that
                # lost its data and restarted at a lower generation is followed again.
                return
            if (
                known.state is state
                and state is not _OPEN
                and known.generation == reply.generation
                and known.failures == reply.failures
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
        self._known = _Known(
            state, reply.generation, reply.failures, valid_until, open_until, shared, ticket, reply
        )

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
            retry = known.open_until - now if state is _OPEN else None
            self._reject(state, retry)
        if state in _PASS_THROUGH:
            return _BYPASS
        return None

    def _reject(self, state: State, retry_after: float | None) -> None:
        with self._counter_lock:
            self.rejected_open += 1
        if self._has_listeners():
            self._emit(self._event(EventKind.REJECTED, state=state))
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
        if self._has_listeners():
            self._emit(self._event(EventKind.BULKHEAD_FULL, state=state))
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
        """Take an outcome's reply; True when this very outcome opened the circuit."""
        self._remember(reply, shared)
        if reply.from_state >= 0:
            self._report_transition(reply, shared)
            # code 0: the outcome was not counted (a repair of the stored state moved first)
            return reply.state is _OPEN and reply.code == 1
        return False

    # ------------------------------------------------------------------ fallback
    def _redis_failed(self, error: BaseException) -> None:
        if self.backend.health.mark_down(error) and self._has_listeners():
            self._emit(self._event(EventKind.REDIS_UNAVAILABLE, error=error, shared=False))
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
            state, generation = known.state, known.generation
            remaining_ms = round(max(0.0, known.open_until - time.monotonic()) * 1000)
        self.backend.memory.seed(self.key, state, generation, remaining_ms, cooldown_ms)

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

    def _without_redis(self) -> Ticket:
        """Admission while Redis cannot be asked, as ``when_store_unreachable`` says."""
        mode = self._unreachable_mode
        if mode == "local" or not self.backend.uses_redis:
            return self._admitted(self.backend.memory.acquire(self.key, self.config), False)
        if mode == "closed":
            return _UNCOUNTED
        with self._counter_lock:
            self.rejected_store_unavailable += 1
        if self._has_listeners():
            self._emit(self._event(EventKind.REJECTED, state=State.OPEN, shared=False))
        raise StoreUnavailableError(self.key, State.OPEN, self.backend.health.retry_interval)

    # ------------------------------------------------------------------ missing from Redis
    def _on_missing(self, known_generation: int) -> Seed:
        """What to re-create when Redis has no state for this circuit (stored.py)."""
        recorded: RecordedState | None = None
        source = self.backend.state_source
        unread = ""
        if source is not None:
            try:
                recorded = source(self.key)
            except Exception as error:
                unread = f"; PostgreSQL could not be read ({type(error).__name__})"
        known = self._known
        if recorded is None and known is not None and known.shared and known.generation > 0:
            recorded = RecordedState(known.state, known.generation, source="this process")
        seed = seed_for(recorded, known_generation)
        self._last_restored = seed if seed.restored_from is not None else None
        if seed.restored_from is not None:
            with self._counter_lock:
                self.restored_states += 1
            log.warning(
                "circuit %s: its state was missing from Redis (evicted? see maxmemory-policy in "
                "docs/breaker.md); restored %s at generation %d from %s (%s recorded there)%s%s; "
                "failure counts are lost",
                self.key,
                seed.state.label,
                seed.generation,
                seed.restored_from.source,
                seed.restored_from.state.label,
                unread,
                f"; the recorded state was {seed.note}" if seed.note else "",
            )
            if seed.note:
                # The repair is an event (PostgreSQL's write-behind records it, and the row
                # moves past the one that could not be used).
                repair = Reply(1, seed.state, seed.generation, 0, 0, 0, 0, seed.state, 0, seed.note)
                backend = self.backend
                self._emit(
                    transition_event(self.key, repair, datetime.now(UTC), backend.host, backend.pid)
                )
        elif unread:
            log.warning(
                "circuit %s: not in Redis and not known to this process%s; starting it closed",
                self.key,
                unread,
            )
        return seed

    # ------------------------------------------------------------------ shared rules
    def _rules_differ(self, stored: SharedRules | None) -> None:
        self._rules_checked = True
        mine = self.config.shared_rules
        if stored is None or stored == mine:
            return
        with self._counter_lock:
            self.config_divergences += 1
        log.warning(
            "circuit %s: this process is configured with %s but the circuit stores %s; the stored"
            " rules apply (change them with `guard breaker configure`)",
            self.key,
            mine.text(),
            stored.text(),
        )

    def _check_rules(self) -> None:
        """Once per circuit and process after its first Redis decision, off the hot path."""
        self.backend.check_redis_config()
        with contextlib.suppress(*REDIS_DOWN_ERRORS):
            self._rules_differ(self.backend.sync_store.rules(self.key))

    # ------------------------------------------------------------------ sync decisions
    def _decide(
        self, script: Script, script_args: Any, generation: int, last: int | None = None
    ) -> Reply | None:
        """One decision in Redis; None when Redis could not take it."""
        try:
            reply = self.backend.sync_store.decide(
                script, self._args, script_args, generation, self._on_missing_cb, last
            )
        except REDIS_DOWN_ERRORS as error:
            self._redis_failed(error)
            return None
        self._redis_succeeded()
        if not self._rules_checked:
            self._check_rules()
        return reply

    def acquire(self) -> Ticket:
        """Admit a call or raise ``CircuitOpenError``. Pair with ``release``."""
        return self._local_admission() or self._acquire_from_store()

    def _acquire_from_store(self) -> Ticket:
        if self._use_redis():
            generation = self._known_generation()
            script_args = self._args.acquire_args(self.config, generation)
            reply = self._decide(SCRIPTS.acquire, script_args, generation)
            if reply is not None:
                return self._admitted(reply, True)
        return self._without_redis()

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
                generation = ticket.generation
                script_args = self._args.record_args(generation, outcome, ticket.probe_seq)
                reply = self._decide(SCRIPTS.record, script_args, generation, duration_ms)
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

    # ------------------------------------------------------------------ async decisions
    async def _decide_async(
        self, script: Script, script_args: Any, generation: int
    ) -> Reply | None:
        """One decision in Redis from the event loop; None when Redis could not take it."""
        try:
            reply = await self.backend.async_store().decide(
                script, self._args, script_args, generation, self._on_missing_cb
            )
        except REDIS_DOWN_ERRORS as error:
            self._redis_failed(error)
            return None
        self._redis_succeeded()
        if not self._rules_checked:
            await asyncio.to_thread(self._check_rules)
        return reply

    async def acquire_async(self) -> Ticket:
        ticket = self._local_admission()
        if ticket is None and self._use_redis():
            generation = self._known_generation()
            script_args = self._args.acquire_args(self.config, generation)
            reply = await self._decide_async(SCRIPTS.acquire, script_args, generation)
            if reply is not None:
                return self._admitted(reply, True)
        return ticket or self._without_redis()

    async def _release_async(self, ticket: Ticket, outcome: Outcome, duration_ms: int) -> bool:
        counted = not ticket.bypass and (outcome is not _IGNORED or ticket.probe_seq != 0)
        if counted and ticket.shared and self._use_redis():
            generation, probe_seq = ticket.generation, ticket.probe_seq
            script_args = (*self._args.record_args(generation, outcome, probe_seq), duration_ms)
            reply = await self._decide_async(SCRIPTS.record, script_args, generation)
            if reply is not None:
                return self._recorded(reply, True)
        return self._release(ticket, outcome, duration_ms, redis_done=True)

    # ------------------------------------------------------------------ outcome bookkeeping
    def _count_failure(self, timed_out: bool) -> None:
        with self._counter_lock:
            if timed_out:
                self.timed_out_calls += 1
            else:
                self.failed_calls += 1

    def _outcome_event(
        self, outcome: Outcome, started: float, error: BaseException | None, timed_out: bool
    ) -> None:
        kind = EventKind.TIMEOUT if timed_out else EventKind[outcome.name]
        self._emit(self._event(kind, elapsed_seconds=time.perf_counter() - started, error=error))

    # ------------------------------------------------------------------ guarded calls
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` under the breaker; raises ``CircuitOpenError`` (or ``BulkheadFullError``)."""
        if tracing.active():
            with DecisionSpan(self) as decision:
                return self._call(decision.admitted(fn), *args, **kwargs)
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
        listening = bool(self._own_listeners or self._shared_listeners)
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
            self._call_failed(ticket, error, started, listening)
            raise
        # _duration_ms inlined: this is the hot path of every guarded call
        duration = _ceil((_perf_counter() - started) * 1000) if started else 0
        if result.__class__ in _GENERATOR_TYPES:
            self._release(ticket, _IGNORED, 0)
            _refuse_generator(fn)  # raises for generator functions
            raise TypeError("the guarded call returned a generator; use breaker.guard()")
        outcome = _SUCCESS
        if self._result_predicates:
            outcome = self.config.classify_result(result)
            if outcome is Outcome.FAILURE:
                self._count_failure(False)
        self._release(ticket, outcome, duration)
        if listening:
            self._outcome_event(outcome, started, None, False)
        return result

    def _call_failed(
        self, ticket: Ticket, error: BaseException, started: float, listening: bool
    ) -> None:
        timed_out = error.__class__ is GuardedCallTimeout
        if self._plain_failures and not timed_out:
            # the default classification, inlined: this is a trip's hot path
            outcome = _FAILURE if isinstance(error, Exception) else _IGNORED
            if outcome is _FAILURE:
                with self._counter_lock:
                    self.failed_calls += 1
        else:
            outcome = self._failure_outcome(error, timed_out)
        duration = _ceil((_perf_counter() - started) * 1000) if started else 0
        tripped = self._release(ticket, outcome, duration)
        if listening or (tripped and self._raise_on_trip):
            self._after_failure(tripped, outcome, started, error, timed_out, listening)

    def _failure_outcome(self, error: BaseException, timed_out: bool = False) -> Outcome:
        """How a call that raised counts (this process's failure counters bumped)."""
        if self._plain_failures and not timed_out:
            # the default classification, without its four calls (a trip's hot path)
            outcome = _FAILURE if isinstance(error, Exception) else _IGNORED
        elif timed_out:
            outcome = Outcome.FAILURE
        elif isinstance(error, asyncio.CancelledError):
            # The caller gave up; hand a probe lease back without waiting on Redis forever.
            outcome = Outcome.IGNORED
        else:
            outcome = self.config.classify_exception(error)
        if outcome is _FAILURE:
            self._count_failure(timed_out)
        return outcome

    def _after_failure(
        self,
        tripped: bool,
        outcome: Outcome,
        started: float,
        error: BaseException,
        timed_out: bool,
        listening: bool,
    ) -> None:
        """Tell the listeners; with ``raise_open_on_trip``, raise ``CircuitOpenError`` on a trip."""
        if listening:
            self._outcome_event(outcome, started, error, timed_out)
        if tripped and self._raise_on_trip:
            known, retry = self._known, None
            if known is not None and known.state is _OPEN:
                retry = max(0.0, known.open_until - time.monotonic())
            raise CircuitOpenError(self.key, State.OPEN, retry) from error

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker; cancelled on timeout."""
        if tracing.active():
            with DecisionSpan(self) as decision:
                return await self._call_async(decision.admitted(fn), *args, **kwargs)
        return await self._call_async(fn, *args, **kwargs)

    async def _call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
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
        wall_offset = 0
        if self.backend.uses_redis:
            with self._redis_for("read the breaker state of"):
                raw, now_ms = self._read_redis()
        else:
            raw = dict(self._memory.read(self.key) or {})
            now_ms = int(raw.pop("now", 0))
            wall_offset = round(time.time() * 1000 - now_ms) if now_ms else 0
        with self._counter_lock:
            counters = (self.rejected_open, self.rejected_bulkhead, self.rejected_store_unavailable)
        return CircuitSnapshot.decode(
            self.key,
            raw,
            now_ms,
            "redis" if self.backend.uses_redis else "memory",
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

    def act(self, action: Action, reason: str, *, actor: str | None = None) -> State:
        """A manual action for every process, recorded as ``guard breaker`` records it (reason
        ``"<action>: <reason>"``, actor ``user@host``); returns the new state."""
        if not reason.strip():
            raise ValueError("a reason is required")
        target, full_reason = ACTION_TARGET[action], f"{action.value}: {reason.strip()}"
        who = actor or default_actor()
        if self.backend.uses_redis:
            with self._redis_for(action.value):
                reply = self.backend.sync_store.control(
                    self._args, target, full_reason, who, self._known_generation(), self._on_missing
                )
        else:
            reply = self._memory.control(self.key, self.config, target, full_reason)
        self._known = None  # the next decision asks the store
        self._report_transition(reply, self.backend.uses_redis, actor=who)
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
        who = actor or default_actor()
        if self.backend.uses_redis:
            store = self.backend.sync_store
            with self._redis_for("configure"):
                reason = configure_reason(store.rules(self.key), rules)
                generation = self._known_generation()
                previous, reply = store.configure(
                    self._args, rules, reason, who, generation, self._on_missing
                )
        else:
            reason = configure_reason(self._memory.rules(self.key), rules)
            previous, reply = self._memory.configure(self.key, rules, reason)
        self._known = None
        self._report_transition(reply, self.backend.uses_redis, actor=who)
        return previous
