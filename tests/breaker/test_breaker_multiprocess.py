"""Eight processes sharing one circuit through Redis, released together by a barrier."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import redis

from guard.breaker import BreakerConfig, CircuitBreaker, State
from guard.ops.breaker_operator import recent_events
from tests.breaker import mp_workers

PROCESSES = 8
CONTEXT = multiprocessing.get_context("spawn")


# What a worker reports: whether it was admitted, the transitions it performed, its rejections.
Result = dict[str, Any]
Started = tuple[list[BaseProcess], Barrier, "Synchronized[int]", "Queue[Result]"]


def _run(
    target: Callable[..., None],
    args_for: Callable[[Barrier, Synchronized[int], Queue[Result]], tuple[Any, ...]],
) -> Started:
    barrier = CONTEXT.Barrier(PROCESSES + 1)
    calls = CONTEXT.Value("i", 0)
    out = CONTEXT.Queue()
    processes: list[BaseProcess] = [
        CONTEXT.Process(target=target, args=args_for(barrier, calls, out)) for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    return processes, barrier, calls, out


def _collect(processes: list[BaseProcess], out: Queue[Result]) -> list[Result]:
    results = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return results


@pytest.mark.slow
@pytest.mark.parametrize("start", ["open_with_cooldown_over", "half_open_idle"])
def test_half_open_burst_admits_exactly_one_probe(redis_url: str, key: str, start: str) -> None:
    cooldown = 1.0
    setup = CircuitBreaker(
        key, BreakerConfig(cooldown_seconds=cooldown, call_timeout_seconds=5), redis_url=redis_url
    )
    for _ in range(3):
        with pytest.raises(ConnectionError):
            setup.call(_fail)
    processes, barrier, calls, out = _run(
        mp_workers.probe_burst, lambda b, c, o: (redis_url, key, cooldown, b, c, o)
    )
    time.sleep(cooldown + 0.1)
    if start == "half_open_idle":
        setup.call(lambda: None)  # performs OPEN -> HALF_OPEN, one probe success, lease back
        assert setup.state is State.HALF_OPEN
    barrier.wait(timeout=60)
    results = _collect(processes, out)

    assert sum(result["admitted"] for result in results) == 1
    assert calls.value == 1
    transitions = [t for result in results for t in result["transitions"]]
    # Each transition is performed (and reported) by exactly one process.
    if start == "open_with_cooldown_over":
        assert transitions == ["open->half_open"]  # the probe is still running at the end
    else:
        assert transitions == ["half_open->closed"]  # the single probe was the 2nd success


@pytest.mark.slow
def test_eight_processes_tripping_give_one_transition_and_bounded_calls(
    redis_url: str, key: str
) -> None:
    processes, barrier, calls, out = _run(
        mp_workers.trip_together, lambda b, c, o: (redis_url, key, b, c, o, 1.0)
    )
    barrier.wait(timeout=60)
    results = _collect(processes, out)

    transitions = [t for result in results for t in result["transitions"]]
    assert transitions == ["closed->open"]
    events = recent_events(redis.Redis.from_url(redis_url), key)
    assert [(e["from_state"], e["to_state"]) for e in events] == [("closed", "open")]
    # Threshold (3) plus at most one in-flight call per other process; a breaker that kept
    # admitting would see ~8 processes x 50 calls in the second the workers run.
    assert 3 <= calls.value <= 3 + PROCESSES - 1
    assert all(result["rejected"] > 0 for result in results)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("failing", "20 of the last 20 calls failed (100%)"),
        ("slow", "20 of the last 20 calls slower than 50 ms (100%)"),
    ],
    ids=["failing", "slow"],
)
def test_eight_processes_fill_one_window_and_open_it_once(
    redis_url: str, key: str, kind: str, reason: str
) -> None:
    """The window is counted atomically across processes: eight of them calling at once open
    the circuit exactly when the 20th call is recorded, wherever it ran, in one transition; the
    dependency sees those 20 calls plus at most one in flight per other process."""
    processes, barrier, calls, out = _run(
        mp_workers.window_together, lambda b, c, o: (redis_url, key, kind, b, c, o, 1.5)
    )
    barrier.wait(timeout=60)
    results = _collect(processes, out)

    transitions = [t for result in results for t in result["transitions"]]
    assert transitions == [f"closed->open: {reason}"]
    events = recent_events(redis.Redis.from_url(redis_url), key)
    assert [(e["to_state"], e["reason"]) for e in events] == [("open", reason)]
    assert 20 <= calls.value <= 20 + PROCESSES - 1
    assert all(result["rejected"] > 0 for result in results)


def _fail() -> None:
    raise ConnectionError("booking API down")
