"""The state machine, on real Redis and on the per-process store (same rules for both)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from guard.breaker import (
    BreakerConfig,
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenError,
    EventKind,
    GuardedCallTimeout,
    Outcome,
    State,
)
from guard.breaker.state import Reply
from tests.support.breakers import Dependency, commands_of_100_calls


class SlotTaken(Exception):
    """A business error: the dependency worked, the slot was simply gone."""


def fail(breaker: CircuitBreaker, dependency: Dependency, times: int) -> None:
    dependency.failing = True
    for _ in range(times):
        with pytest.raises((ConnectionError, CircuitOpenError)):
            breaker.call(dependency)


def test_opens_after_threshold_consecutive_failures_and_stops_calling(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, dependency = make_breaker(), Dependency()
    fail(breaker, dependency, 3)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(dependency)
    assert dependency.calls == 3
    assert rejected.value.retry_after is not None and 0 < rejected.value.retry_after <= 0.3


def test_success_resets_consecutive_failures(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker, dependency = make_breaker(), Dependency()
    fail(breaker, dependency, 2)
    dependency.failing = False
    breaker.call(dependency)
    fail(breaker, dependency, 2)
    assert breaker.state is State.CLOSED


def test_half_open_after_cooldown_then_closes_after_two_probe_successes(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker, dependency = make_breaker(), Dependency()
    fail(breaker, dependency, 3)
    time.sleep(0.35)
    dependency.failing = False
    assert breaker.call(dependency) == "booked"
    assert breaker.state is State.HALF_OPEN
    assert breaker.call(dependency) == "booked"
    assert breaker.state is State.CLOSED  # type: ignore[comparison-overlap]  # state is re-read, mypy keeps it narrowed


def test_failure_in_half_open_opens_again(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker, dependency = make_breaker(), Dependency()
    fail(breaker, dependency, 3)
    time.sleep(0.35)
    fail(breaker, dependency, 1)
    assert breaker.state is State.OPEN
    calls = dependency.calls
    with pytest.raises(CircuitOpenError):
        breaker.call(dependency)
    assert dependency.calls == calls


def test_half_open_admits_one_probe_at_a_time(make_breaker: Callable[..., CircuitBreaker]) -> None:
    first, second = make_breaker(), make_breaker()
    fail(first, Dependency(), 3)
    time.sleep(0.35)
    probe = first.acquire()
    assert probe.probe_seq > 0
    with pytest.raises(CircuitOpenError) as rejected:
        second.acquire()
    assert rejected.value.state is State.HALF_OPEN
    first.release(probe, Outcome.SUCCESS)
    next_probe = second.acquire()  # the lease was handed back with the outcome
    assert next_probe.probe_seq == probe.probe_seq + 1


def test_crashed_probe_lease_expires_after_call_timeout(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    config = BreakerConfig(cooldown_seconds=0.2, call_timeout_seconds=0.1)
    crashed, survivor = make_breaker(config), make_breaker(config)
    fail(crashed, Dependency(), 3)
    time.sleep(0.25)
    crashed.acquire()  # never released: the process "died" holding the probe
    with pytest.raises(CircuitOpenError):
        survivor.acquire()
    time.sleep(config.probe_lease_ms / 1000 + 0.05)
    assert survivor.acquire().probe_seq > 0


def test_outcome_of_a_call_from_an_older_generation_is_ignored(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    slow, other = make_breaker(), make_breaker()
    ticket = slow.acquire()  # admitted while CLOSED, still running…
    fail(other, Dependency(), 3)
    time.sleep(0.35)
    other.call(lambda: None)  # now HALF_OPEN → one probe success
    slow.release(ticket, Outcome.FAILURE)  # …the old call fails late: must not reopen
    other.call(lambda: None)
    assert other.state is State.CLOSED


def test_a_late_failure_from_before_an_outage_does_not_count_after_it(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """A call admitted in CLOSED that fails only after the circuit opened and closed again
    belongs to an older generation: it must not count towards the new consecutive failures."""
    slow, other = make_breaker(), make_breaker()
    ticket = slow.acquire()  # admitted while CLOSED, still running…
    fail(other, Dependency(), 3)
    time.sleep(0.35)
    other.call(lambda: None)
    other.call(lambda: None)  # two probe successes: CLOSED again, a newer generation
    assert other.state is State.CLOSED
    slow.release(ticket, Outcome.FAILURE)  # …the old call fails late
    fail(other, Dependency(), 2)
    assert other.state is State.CLOSED, "the late failure counted as the third in a row"


def test_ignored_exceptions_and_result_predicates(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    config = BreakerConfig(
        cooldown_seconds=0.3,
        call_timeout_seconds=None,
        ignored_exceptions=(SlotTaken,),
        is_failure_result=lambda result: result == 503,
    )
    breaker = make_breaker(config)

    def slot_taken() -> None:
        raise SlotTaken

    for _ in range(5):
        with pytest.raises(SlotTaken):
            breaker.call(slot_taken)
    assert breaker.state in (None, State.CLOSED)
    for _ in range(3):
        assert breaker.call(lambda: 503) == 503
    assert breaker.state is State.OPEN  # type: ignore[comparison-overlap]  # state is re-read, mypy keeps it narrowed


def test_listeners_see_every_event_and_each_transition_once(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    events: list[BreakerEvent] = []
    breaker = make_breaker()
    breaker.add_listener(events.append)
    dependency = Dependency()
    breaker.call(dependency)
    fail(breaker, dependency, 4)
    kinds = [event.kind for event in events]
    assert kinds == [EventKind.SUCCESS] + [EventKind.FAILURE] * 3 + [
        EventKind.TRANSITION,
        EventKind.REJECTED,
    ] or kinds == [EventKind.SUCCESS] + [EventKind.FAILURE] * 2 + [
        EventKind.TRANSITION,
        EventKind.FAILURE,
        EventKind.REJECTED,
    ]
    transition = next(event for event in events if event.kind is EventKind.TRANSITION)
    assert (transition.from_state, transition.state) == (State.CLOSED, State.OPEN)
    assert transition.failure_count == 3 and transition.reason == "3 consecutive failures"


def test_a_late_reply_of_an_older_generation_does_not_bring_back_closed(
    make_breaker: Callable[..., CircuitBreaker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies of concurrent calls of one process are handled in any order. Thread A's
    "closed, 0 failures" reply, handled after this process already saw the circuit open, must
    not re-enable local admission (it would call a failing dependency for up to a second)."""
    config = BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None)
    breaker, other = make_breaker(config), make_breaker(config)
    dependency = Dependency()
    breaker.call(dependency)  # this process now admits from its cache ("closed, 0 failures")
    backend = breaker.backend
    store = backend.sync_store if backend.uses_redis else backend.memory
    records = "decide" if backend.uses_redis else "record"  # the Redis store's every decision
    real_record: Callable[..., Reply] = getattr(store, records)
    answered, handle_it = threading.Event(), threading.Event()

    def record_then_stall(*args: Any) -> Reply:
        reply = real_record(*args)
        if threading.current_thread().name == "thread-a":
            answered.set()
            handle_it.wait(10)
        return reply

    monkeypatch.setattr(store, records, record_then_stall)
    thread_a = threading.Thread(target=breaker.call, args=(dependency,), name="thread-a")
    thread_a.start()
    assert answered.wait(10)  # the store said "closed, 0 failures" to thread A …
    fail(other, dependency, 3)  # … then another process opened the circuit …
    with pytest.raises(ConnectionError):
        breaker.call(dependency)  # … this process learns it from its next reply …
    assert breaker.state is State.OPEN
    handle_it.set()  # … and only then thread A handles its (older) reply.
    thread_a.join(10)
    calls = dependency.calls
    with pytest.raises(CircuitOpenError):
        breaker.call(dependency)
    assert dependency.calls == calls
    assert breaker.state is State.OPEN


def test_sync_timeout_stops_waiting_and_counts_a_failure(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker = make_breaker(BreakerConfig(call_timeout_seconds=0.05, cooldown_seconds=5))
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(GuardedCallTimeout):
            breaker.call(time.sleep, 1.0)
        assert time.monotonic() - started < 0.9  # did not wait for the sleeping call
    assert breaker.state is State.OPEN


def test_the_shipped_default_runs_a_sync_call_on_the_callers_thread(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """No timeout by default, so no hand-off to the circuit's worker thread (it would cost more
    than the breaker); a configured timeout moves the call to one (and times it out, above)."""
    caller = threading.current_thread()
    assert make_breaker(BreakerConfig()).call(threading.current_thread) is caller
    timed = make_breaker(BreakerConfig(call_timeout_seconds=5))
    worker = timed.call(threading.current_thread)
    assert worker is not caller and worker.name.startswith("guard-breaker-")


def test_without_a_timeout_a_probe_lease_is_11_s(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """A probe whose call has no timeout still holds its lease for a bounded time: a crashed
    probe frees the circuit after 11 s (the slow test below waits for it)."""
    config = BreakerConfig(cooldown_seconds=0.2)
    breaker = make_breaker(config)
    fail(breaker, Dependency(), 3)
    time.sleep(0.25)
    assert breaker.acquire().probe_seq > 0
    raw, now_ms = breaker.backend.store.read_with_time(breaker.key)
    assert 10_000 < int(raw["pu"]) - now_ms <= 11_000


@pytest.mark.slow
def test_crashed_probe_lease_without_a_timeout_expires(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    config = BreakerConfig(cooldown_seconds=0.2)
    crashed, survivor = make_breaker(config), make_breaker(config)
    fail(crashed, Dependency(), 3)
    time.sleep(0.25)
    crashed.acquire()  # never released: the process "died" holding the probe
    with pytest.raises(CircuitOpenError):
        survivor.acquire()
    time.sleep(11.05)
    assert survivor.acquire().probe_seq > 0


def test_context_manager_and_decorator(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker = make_breaker()
    dependency = Dependency()
    guarded = breaker(dependency)
    assert guarded() == "booked"
    dependency.failing = True
    for _ in range(3):
        with pytest.raises(ConnectionError), breaker.guard():
            dependency()
    with pytest.raises(CircuitOpenError), breaker.guard():
        dependency()
    assert dependency.calls == 4


def test_async_calls_timeouts_and_guard(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker = make_breaker(BreakerConfig(call_timeout_seconds=0.05, cooldown_seconds=0.3))

    @breaker
    async def book(delay: float) -> str:
        await asyncio.sleep(delay)
        return "booked"

    async def scenario() -> None:
        assert await book(0) == "booked"
        started = time.monotonic()
        with pytest.raises(GuardedCallTimeout):
            await book(5)  # cancelled, not awaited to the end
        assert time.monotonic() - started < 1.0
        with pytest.raises(GuardedCallTimeout):
            async with breaker.guard():
                await asyncio.sleep(5)
        with pytest.raises(GuardedCallTimeout):
            await breaker.call_async(book, 5)
        assert breaker.state is State.OPEN
        with pytest.raises(CircuitOpenError):
            await book(0)
        await asyncio.sleep(0.35)
        assert await book(0) == "booked"
        assert await book(0) == "booked"
        assert breaker.state is State.CLOSED  # type: ignore[comparison-overlap]  # state is re-read, mypy keeps it narrowed

    asyncio.run(scenario())


def test_manual_states_are_obeyed(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker, dependency = make_breaker(), Dependency()
    breaker.call(dependency)
    ticket_reply = _control(breaker, State.FORCED_OPEN)
    assert ticket_reply.state is State.FORCED_OPEN
    breaker._known = None  # another process acted; forget the cached state
    with pytest.raises(CircuitOpenError):
        breaker.call(dependency)
    _control(breaker, State.FORCED_CLOSED)
    breaker._known = None
    fail(breaker, dependency, 5)
    assert dependency.calls == 6  # forced closed: failures never trip it


def _control(breaker: CircuitBreaker, target: State) -> Reply:
    return breaker.backend.store.control(breaker._args, target, "test", "tester", 0)


def test_known_open_circuit_rejects_without_a_redis_round_trip(
    redis_url: str, key: str, fast_config: BreakerConfig
) -> None:
    breaker = CircuitBreaker(key, BreakerConfig(cooldown_seconds=30), redis_url=redis_url)
    fail(breaker, Dependency(), 3)
    stats = redis.Redis.from_url(redis_url)
    stats.config_resetstat()
    for _ in range(200):
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    evalsha = stats.info("commandstats").get("cmdstat_evalsha", {"calls": 0})["calls"]
    # local_state_ttl (1 s) allows a refresh per second; 200 rejections take far less.
    assert evalsha <= 1


def test_successful_closed_call_costs_one_round_trip(redis_url: str, key: str) -> None:
    breaker = CircuitBreaker(key, BreakerConfig(call_timeout_seconds=None), redis_url=redis_url)
    commands = commands_of_100_calls(breaker, redis_url)
    # 100 calls within one second: one EVALSHA each (+ at most one TTL refresh), nothing else.
    assert commands.get("cmdstat_evalsha", 0) in (100, 101)
    # Commands run inside the script are counted too; no other client command was sent.
    assert set(commands) <= {"cmdstat_evalsha", "cmdstat_info", "cmdstat_hmget"}


def test_constructor_never_raises_when_redis_is_unreachable(
    key: str, fast_config: BreakerConfig
) -> None:
    breaker = CircuitBreaker(key, fast_config, redis_url="redis://:secret@127.0.0.1:1/0")
    assert breaker.call(lambda: 42) == 42
    assert breaker.backend.health.down
    assert "secret" not in breaker.backend.masked_url
