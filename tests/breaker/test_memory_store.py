"""The per-process store's lock-free hot path (a success in CLOSED with no failures).

The hot path reads one attribute instead of taking the lock; these tests pin down that it
answers only for the current generation of a CLOSED circuit without failures, and that the
locked mutations keep that attribute right under real thread interleavings.
"""

from __future__ import annotations

import threading

from guard.breaker import BreakerConfig, Outcome, State
from guard.breaker.machine import MemoryStore
from guard.breaker.redis_store import CircuitArgs

KEY = "test:memory-store"
CONFIG = BreakerConfig(failure_threshold=3, cooldown_seconds=60, call_timeout_seconds=None)
ARGS = CircuitArgs.build(KEY, CONFIG, "host", 1)


def test_success_of_an_older_generation_is_stale_not_hot() -> None:
    store = MemoryStore()
    old = store.acquire(KEY, CONFIG).generation
    store.control(ARGS, State.FORCED_OPEN, "test")
    store.control(ARGS, State.CLOSED, "test")  # CLOSED again, one generation later
    reply = store.record(KEY, CONFIG, old, Outcome.SUCCESS, 0)
    assert reply.code == 0, "a success from before the reset must not be counted"
    assert reply.generation == old + 2


def test_success_after_a_failure_takes_the_counting_path_and_resets_failures() -> None:
    store = MemoryStore()
    generation = store.acquire(KEY, CONFIG).generation
    assert store.record(KEY, CONFIG, generation, Outcome.FAILURE, 0).failures == 1
    store.record(KEY, CONFIG, generation, Outcome.SUCCESS, 0)
    for _ in range(CONFIG.failure_threshold - 1):
        store.record(KEY, CONFIG, generation, Outcome.FAILURE, 0)
    assert store.acquire(KEY, CONFIG).state is State.CLOSED, "the success reset the count"
    reply = store.record(KEY, CONFIG, generation, Outcome.FAILURE, 0)
    assert reply.state is State.OPEN and reply.transitioned


def test_hot_reply_matches_the_state_under_concurrent_outcomes() -> None:
    """8 threads report successes while 2 report failures; the circuit trips and is reset.

    After every round the published hot reply must describe the circuit exactly: present only
    when CLOSED with zero failures, and then for the current generation.
    """
    store = MemoryStore()
    stop = threading.Event()
    errors: list[str] = []

    def report(outcome: Outcome) -> None:
        while not stop.is_set():
            generation = store.acquire(KEY, CONFIG).generation
            reply = store.record(KEY, CONFIG, generation, outcome, 0)
            if reply.code == 1 and reply.generation != generation and not reply.transitioned:
                errors.append(f"counted for generation {reply.generation}, admitted {generation}")

    threads = [threading.Thread(target=report, args=(Outcome.SUCCESS,)) for _ in range(8)]
    threads += [threading.Thread(target=report, args=(Outcome.FAILURE,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    trips = 0
    try:
        for _ in range(200):
            circuit = store._circuits.get(KEY)
            if circuit is not None and circuit.state is State.OPEN:
                trips += 1
                store.control(ARGS, State.CLOSED, "test")
            with store._lock:  # a consistent view to check against
                circuit = store._circuits[KEY]
                hot = circuit.hot_reply
                if circuit.state is State.CLOSED and circuit.failures == 0:
                    assert hot is not None and hot.generation == circuit.generation
                else:
                    assert hot is None
            threading.Event().wait(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:3]
    assert trips > 0, "the failing threads never tripped the circuit: the test proved nothing"


WINDOW = BreakerConfig(
    failure_threshold=10_000,
    cooldown_seconds=60,
    call_timeout_seconds=None,
    failure_rate_threshold=100,
    slow_call_seconds=0.01,
    slow_call_rate_threshold=100,
    window_size=50,
    minimum_calls=50,
)


def test_a_window_takes_the_locked_path_and_its_totals_match_its_slots() -> None:
    """With a failure-rate window every outcome is recorded (no lock-free hot path), and under
    8 threads the window's totals stay exactly the sum of its slots."""
    store = MemoryStore()
    generation = store.acquire(KEY, WINDOW).generation
    circuit = store._circuits[KEY]
    assert circuit.hot_reply is None and circuit.quiet_reply is not None

    # Each thread mixes fast successes, slow successes and failures: no rate reaches 100 %.
    mix = [(Outcome.SUCCESS, 1), (Outcome.SUCCESS, 20), (Outcome.FAILURE, 1), (Outcome.SUCCESS, 1)]

    def report(start: int) -> None:
        for i in range(2000):
            outcome, duration_ms = mix[(start + i) % len(mix)]
            store.record(KEY, WINDOW, generation, outcome, 0, duration_ms)

    threads = [threading.Thread(target=report, args=(start,)) for start in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store._lock:
        assert circuit.state is State.CLOSED and circuit.generation == generation
        live = [
            slot
            for slot in circuit.slots.values()
            if isinstance(slot, int) and slot // 4 == circuit.window_epoch
        ]
        assert len(live) == circuit.window_calls == 50
        assert sum(slot % 2 for slot in live) == circuit.window_failures
        assert sum(slot % 4 // 2 for slot in live) == circuit.window_slow
