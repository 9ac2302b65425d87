"""Differential test: the Lua scripts in real Redis and the Python memory store take the same
decisions.

Hypothesis generates random sequences of admissions, outcomes (for any admitted call, in any
order, so stale generations and stale probes are included; each with a duration, fast or slow),
manual actions, rule changes (the failure-rate window's and the growing cooldown's too) and time
steps, and runs each sequence against both stores; every reply (code, state, generation, counts,
open-until, clock, transition, probe sequence, reason) and the stored fields after every step
(the window's totals, epoch and every slot, the grown cooldown, the last failure and closed-at
times included) must be identical. Half the circuits have a count or time
failure-rate window, small enough that the sequences fill it, wrap around it and outlive it.

Both stores run on a clock the test steps. The memory store takes a clock function; the Lua
scripts are the production scripts with only ``now_ms()`` replaced (``lua.scripts(clock)``)
by a read of a key the test sets — every decision line is the code that runs in production.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.breaker import BreakerConfig, Outcome, State
from guard.breaker.codec import new_circuit
from guard.breaker.machine import MemoryStore
from guard.breaker.redis_store import CircuitArgs, RedisStore, Scripts, hash_key, make_client
from guard.breaker.state import ACTION_TARGET, Action, Reply
from tests.support.redis_server import RedisServer

CLOCK_KEY = "guard:test:clock"
TEST_CLOCK = f"""
local function now_ms()
  return tonumber(redis.call('GET', '{CLOCK_KEY}') or '0')
end
"""
_circuits = itertools.count(1)


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    with RedisServer() as server:
        client = make_client(server.url, connect_timeout=2, read_timeout=2)
        yield client
        client.close()


class ScriptStore(RedisStore):
    """ACQUIRE and RECORD run on their own, as the breaker runs them (``decide``)."""

    def acquire(self, args: CircuitArgs, cfg: BreakerConfig, known_gen: int) -> Reply:
        script_args = args.acquire_args(cfg, known_gen)
        return self.decide(args, new_circuit, self.scripts.acquire, script_args, known_gen)

    def record(
        self, args: CircuitArgs, gen: int, outcome: Outcome, probe_seq: int, duration_ms: int = 0
    ) -> Reply:
        script_args = args.record_args(gen, outcome, probe_seq)
        return self.decide(args, new_circuit, self.scripts.record, script_args, gen, duration_ms)


@dataclass
class Pair:
    """A new circuit in both stores, on one stepped clock: the scripts read it from CLOCK_KEY,
    the memory store from `now`."""

    config: BreakerConfig
    client: redis.Redis
    now: int = 1_000_000
    key: str = field(init=False)
    memory: MemoryStore = field(init=False)
    redis_store: ScriptStore = field(init=False)

    def __post_init__(self) -> None:
        self.key = f"differential:{next(_circuits)}"
        self.memory = MemoryStore(clock=lambda: self.now)
        self.redis_store = ScriptStore(self.client, Scripts.build(TEST_CLOCK))
        self.args = CircuitArgs.build(self.key, self.config, "host", 1)
        self.client.set(CLOCK_KEY, self.now)

    def advance(self, ms: int) -> None:
        self.now += ms
        self.client.set(CLOCK_KEY, self.now)

    def stored(self) -> tuple[dict[str, str], dict[str, str]]:
        """Every field both stores keep (window slots included), as the Redis hash has them."""
        # a client without decode_responses: redis-py's types cannot tell, the replies are bytes
        raw = cast(dict[bytes, bytes], self.client.hgetall(hash_key(self.key)))
        in_redis = {k.decode(): v.decode() for k, v in raw.items() if k.decode() != "ca"}
        in_memory: dict[str, str] = {}
        fields, _ = self.memory.read_with_time(self.key)
        if fields:
            in_memory = {k: v for k, v in fields.items() if k != "ca"}
            # the scripts write the window's fields only once a window was used
            for name in WINDOW_STATE:
                in_redis.setdefault(name, "0")
        return in_redis, in_memory


WINDOW_STATE = ("we", "wn", "wf", "wsl", "wp")

outcomes = st.sampled_from(list(Outcome))
# Call durations in ms around the slow-call durations the rules use (50 ms, 1 s).
durations = st.sampled_from([0, 1, 50, 51, 1000, 1001, 5000])


@st.composite
def window_options(draw: st.DrawFn, always: bool = False) -> dict[str, Any]:
    """BreakerConfig's window fields: none (unless ``always``), or a small count or time
    window."""
    if not always and draw(st.booleans()):
        return {}
    failure_rate = draw(st.sampled_from([None, 1, 34, 50, 67, 100]))
    slow_rate = draw(st.sampled_from([None, 25, 50, 100]))
    if failure_rate is None and slow_rate is None:
        failure_rate = 50
    window_type = draw(st.sampled_from(["count", "time"]))
    return {
        "failure_rate_threshold": failure_rate,
        "slow_call_rate_threshold": slow_rate,
        "slow_call_seconds": None if slow_rate is None else draw(st.sampled_from([0.05, 1.0])),
        "window_type": window_type,
        "window_size": draw(st.integers(min_value=1, max_value=6 if window_type == "count" else 4)),
        "minimum_calls": draw(st.integers(min_value=1, max_value=8)),
    }


# The growing cooldown as stored (percent, cap ms): off, or growing past a short cap, or with a
# cap below the cooldown (only a stored value can be that: the cooldown then never grows).
stored_growth = st.sampled_from([(0, 0), (200, 1000), (150, 5000), (300, 400), (1000, 60_000)])

# Steps of both sequences: an admission alone, the outcome of any earlier admission (stale or
# concurrent), an operator's action, and rules stored by `configure`.
acquires = st.tuples(st.just("acquire"))
records = st.tuples(st.just("record"), st.integers(min_value=0, max_value=50), outcomes, durations)
controls = st.tuples(st.just("control"), st.sampled_from(list(Action)))


def configures(max_failure_threshold: int, window: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.just("configure"),
        st.integers(min_value=1, max_value=max_failure_threshold),
        st.integers(min_value=1, max_value=3),
        st.sampled_from([1, 50, 300, 2000]),
        window_options(always=window),
        stored_growth,
    )


# Whole calls (admission, then its outcome at once) reach the deeper states quickly; separate
# admissions and outcomes of any earlier call interleave concurrent and stale ones.
operations = st.one_of(
    st.tuples(st.just("call"), outcomes, durations),
    st.tuples(st.just("call"), outcomes, durations),
    st.tuples(st.just("call"), st.just(Outcome.FAILURE), durations),
    st.tuples(st.just("call"), st.just(Outcome.SUCCESS), durations),
    acquires,
    records,
    st.tuples(st.just("advance"), st.sampled_from([0, 1, 5, 20, 100, 250, 1000, 1500])),
    st.tuples(st.just("advance"), st.sampled_from([60, 400, 999, 2100, 3000, 4500])),
    controls,
    configures(max_failure_threshold=4, window=False),
)


@st.composite
def growth_options(draw: st.DrawFn, cooldown_seconds: float) -> dict[str, Any]:
    """BreakerConfig's growing cooldown: none, or a factor with a cap from the cooldown up."""
    factor = draw(st.sampled_from([None, 1.5, 2.0, 3.0]))
    if factor is None:
        return {}
    return {
        "cooldown_growth_factor": factor,
        "max_cooldown_seconds": cooldown_seconds * draw(st.sampled_from([1, 4, 100])),
    }


@st.composite
def configs(draw: st.DrawFn, window: bool = False) -> BreakerConfig:
    cooldown = draw(st.sampled_from([0.001, 0.05, 0.3, 2.0]))
    return BreakerConfig(
        # with a window, often a consecutive rule that leaves the window time to fill
        failure_threshold=draw(st.integers(min_value=1, max_value=12 if window else 4)),
        success_threshold=draw(st.integers(min_value=1, max_value=3)),
        cooldown_seconds=cooldown,
        # The probe lease is call timeout + 1 s: 1.05 s here, so time steps cross it.
        call_timeout_seconds=0.05,
        **draw(window_options(always=window)),
        **draw(growth_options(cooldown)),
    )


# Mostly whole calls and time steps around the buckets' second: windows fill, wrap and expire.
window_operations = st.one_of(
    *[st.tuples(st.just("call"), outcomes, durations)] * 4,
    st.tuples(st.just("call"), st.just(Outcome.SUCCESS), st.just(1)),
    st.tuples(st.just("call"), st.just(Outcome.FAILURE), st.just(1)),
    acquires,
    records,
    st.tuples(st.just("advance"), st.sampled_from([0, 1, 300, 999, 1000, 1001, 2500])),
    st.tuples(st.just("advance"), st.sampled_from([2100, 3000, 4000, 5000])),
    controls,
    configures(max_failure_threshold=12, window=True),
)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(config=configs(), steps=st.lists(operations, min_size=1, max_size=80))
def test_lua_and_memory_store_decide_alike(
    redis_client: redis.Redis, config: BreakerConfig, steps: list[tuple[Any, ...]]
) -> None:
    run_on_both(redis_client, config, steps)


@pytest.mark.slow  # 300 generated sequences of 40 to 120 steps: about half a minute
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(config=configs(window=True), steps=st.lists(window_operations, min_size=40, max_size=120))
def test_lua_and_memory_store_keep_the_same_window(
    redis_client: redis.Redis, config: BreakerConfig, steps: list[tuple[Any, ...]]
) -> None:
    """Circuits with a failure-rate window, driven mostly by calls: their windows fill, wrap
    around, expire bucket by bucket and open the circuit on either rate."""
    run_on_both(redis_client, config, steps)


def run_on_both(
    redis_client: redis.Redis, config: BreakerConfig, steps: list[tuple[Any, ...]]
) -> None:
    pair = Pair(config, redis_client)
    admitted: list[tuple[int, int]] = []  # (generation, probe_seq) of calls not yet recorded
    for generated in steps:
        step = generated
        if step[0] == "call":
            # An admission, then (if admitted) the outcome of that very call.
            in_redis = pair.redis_store.acquire(pair.args, config, 0)
            in_memory = pair.memory.acquire(pair.key, config)
            assert in_redis == in_memory, (step, steps)
            if not in_redis.code:
                continue
            probe = in_redis.probe_seq if in_redis.code == 2 else 0
            admitted.append((in_redis.generation, probe))
            step = ("record", len(admitted) - 1, step[1], step[2])
        match step:
            case ("acquire",):
                in_redis = pair.redis_store.acquire(pair.args, config, 0)
                in_memory = pair.memory.acquire(pair.key, config)
                if in_redis.code:
                    probe = in_redis.probe_seq if in_redis.code == 2 else 0
                    admitted.append((in_redis.generation, probe))
            case ("record", index, outcome, duration):
                if not admitted:
                    continue
                generation, probe = admitted.pop(index % len(admitted))
                in_redis = pair.redis_store.record(
                    pair.args, generation, outcome, probe, duration_ms=duration
                )
                in_memory = pair.memory.record(
                    pair.key, config, generation, outcome, probe, duration
                )
            case ("advance", ms):
                pair.advance(ms)
                continue
            case ("control", action):
                target = ACTION_TARGET[action]
                in_redis = pair.redis_store.control(pair.args, target, action.value, "me", 0)
                in_memory = pair.memory.control(pair.args, target, action.value)
            case ("configure", failures, successes, cooldown, window, (growth, cap)):
                shared = BreakerConfig(call_timeout_seconds=0.05, **window).shared_rules
                rules = shared._replace(
                    failure_threshold=failures,
                    success_threshold=successes,
                    cooldown_ms=cooldown,
                    cooldown_growth_percent=growth,
                    max_cooldown_ms=cap,
                )
                # a change of the circuit: the previous rules and the reply of the change
                in_redis_configure = pair.redis_store.configure(pair.args, rules, "configure")
                in_memory_configure = pair.memory.configure(pair.args, rules, "configure")
                assert in_redis_configure == in_memory_configure, step
                in_redis, in_memory = in_redis_configure[1], in_memory_configure[1]
            case _:
                raise AssertionError(step)
        assert in_redis == in_memory, (step, steps)
        in_redis_fields, in_memory_fields = pair.stored()
        assert in_redis_fields == in_memory_fields, (step, steps)


def test_the_differential_test_can_fail(redis_client: redis.Redis) -> None:
    """Guard against a vacuous comparison: a memory store with another rule (threshold off by
    one) is told apart within a few steps."""
    config = BreakerConfig(failure_threshold=2, call_timeout_seconds=0.05)
    pair = Pair(config, redis_client)
    other = BreakerConfig(failure_threshold=3, call_timeout_seconds=0.05)
    replies = []
    for _ in range(2):
        in_redis = pair.redis_store.acquire(pair.args, config, 0)
        in_memory = pair.memory.acquire(pair.key, other)
        replies.append(
            (
                pair.redis_store.record(pair.args, in_redis.generation, Outcome.FAILURE, 0),
                pair.memory.record(pair.key, other, in_memory.generation, Outcome.FAILURE, 0),
            )
        )
    in_redis, in_memory = replies[-1]
    assert in_redis.state is State.OPEN and in_memory.state is State.CLOSED


def test_a_time_window_lets_old_buckets_go_while_calls_keep_coming(
    redis_client: redis.Redis,
) -> None:
    """Time window of 3 s (50 %, minimum 3) on a stepped clock, both stores: failures at 0 s and
    1 s, then a success at 3 s. The 0 s bucket has left the window (2 calls: under the minimum,
    closed); were it kept, 2 of 3 failed would open the circuit. At 4 s the 1 s bucket leaves
    too."""
    config = BreakerConfig(
        failure_threshold=100,
        call_timeout_seconds=0.05,
        failure_rate_threshold=50,
        window_type="time",
        window_size=3,
        minimum_calls=3,
    )
    pair = Pair(config, redis_client)
    pair.advance(-(pair.now % 1000))  # the start of a second
    windows = []
    for step_ms, outcome in [
        (0, Outcome.FAILURE),
        (1000, Outcome.FAILURE),
        (2000, Outcome.SUCCESS),
        (500, Outcome.SUCCESS),
        (0, Outcome.SUCCESS),
        (500, Outcome.SUCCESS),
    ]:
        pair.advance(step_ms)
        generation = pair.memory.acquire(pair.key, config).generation
        assert pair.redis_store.acquire(pair.args, config, 0).generation == generation
        in_redis = pair.redis_store.record(pair.args, generation, outcome, 0)
        in_memory = pair.memory.record(pair.key, config, generation, outcome, 0)
        assert in_redis == in_memory
        assert in_redis.state is State.CLOSED, in_redis.reason
        in_redis_fields, in_memory_fields = pair.stored()
        assert in_redis_fields == in_memory_fields
        windows.append((int(in_redis_fields["wn"]), int(in_redis_fields["wf"])))
    assert windows == [(1, 1), (2, 2), (2, 1), (3, 1), (4, 1), (4, 0)]
