"""Differential test: the Lua scripts in real Redis and the Python memory store take the same
decisions.

Hypothesis generates random sequences of admissions, outcomes (for any admitted call, in any
order, so stale generations and stale probes are included), manual actions, rule changes and
time steps, and runs each sequence against both stores; every reply (code, state, generation,
counts, open-until, clock, transition, probe sequence, reason) and the stored fields after
every step must be identical.

Both stores run on a clock the test steps. The memory store takes a clock function; the Lua
scripts are the production scripts with only ``now_ms()`` replaced (``lua.scripts(clock)``)
by a read of a key the test sets — every decision line is the code that runs in production.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.breaker import BreakerConfig, Outcome, SharedRules, State
from guard.breaker.lua import hash_key
from guard.breaker.memory_store import MemoryStore
from guard.breaker.redis_store import CircuitArgs, RedisStore, Scripts, make_client
from guard.breaker.state import ACTION_TARGET, Action
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


@dataclass
class Pair:
    """One circuit in both stores, on one stepped clock."""

    key: str
    config: BreakerConfig
    memory: MemoryStore
    redis_store: RedisStore
    client: redis.Redis
    now: int = 1_000_000

    def __post_init__(self) -> None:
        self.args = CircuitArgs.build(self.key, self.config, "host", 1)
        self.client.set(CLOCK_KEY, self.now)

    def advance(self, ms: int) -> None:
        self.now += ms
        self.client.set(CLOCK_KEY, self.now)

    def stored(self) -> tuple[dict[str, int], dict[str, int]]:
        names = ("st", "g", "f", "s", "oa", "pu", "ps")
        # a client without decode_responses: redis-py's types cannot tell, the replies are bytes
        raw = cast(dict[bytes, bytes], self.client.hgetall(hash_key(self.key)))
        in_redis = {k.decode(): int(v) for k, v in raw.items() if k.decode() in names}
        in_memory = {k: v for k, v in (self.memory.read(self.key) or {}).items() if k in names}
        return in_redis, in_memory


outcomes = st.sampled_from(list(Outcome))
# Whole calls (admission, then its outcome at once) reach the deeper states quickly; separate
# admissions and outcomes of any earlier call interleave concurrent and stale ones.
operations = st.one_of(
    st.tuples(st.just("call"), outcomes),
    st.tuples(st.just("call"), outcomes),
    st.tuples(st.just("call"), st.just(Outcome.FAILURE)),
    st.tuples(st.just("acquire")),
    st.tuples(st.just("record"), st.integers(min_value=0, max_value=50), outcomes),
    st.tuples(st.just("advance"), st.sampled_from([0, 1, 5, 20, 100, 250, 1000, 1500])),
    st.tuples(st.just("advance"), st.sampled_from([60, 400, 2100])),
    st.tuples(st.just("control"), st.sampled_from(list(Action))),
    st.tuples(
        st.just("configure"),
        st.integers(min_value=1, max_value=4),
        st.integers(min_value=1, max_value=3),
        st.sampled_from([1, 50, 300, 2000]),
    ),
)

configs = st.builds(
    BreakerConfig,
    failure_threshold=st.integers(min_value=1, max_value=4),
    success_threshold=st.integers(min_value=1, max_value=3),
    cooldown_seconds=st.sampled_from([0.001, 0.05, 0.3, 2.0]),
    # The probe lease is call timeout + 1 s: 1.05 s here, so time steps cross it.
    call_timeout_seconds=st.just(0.05),
)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(config=configs, steps=st.lists(operations, min_size=1, max_size=60))
def test_lua_and_memory_store_decide_alike(
    redis_client: redis.Redis, config: BreakerConfig, steps: list[tuple[Any, ...]]
) -> None:
    clock = [0]
    pair = Pair(
        key=f"differential:{next(_circuits)}",
        config=config,
        memory=MemoryStore(clock=lambda: clock[0]),
        redis_store=RedisStore(redis_client, Scripts.build(TEST_CLOCK)),
        client=redis_client,
    )
    clock[0] = pair.now
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
            step = ("record", len(admitted) - 1, step[1])
        match step:
            case ("acquire",):
                in_redis = pair.redis_store.acquire(pair.args, config, 0)
                in_memory = pair.memory.acquire(pair.key, config)
                if in_redis.code:
                    probe = in_redis.probe_seq if in_redis.code == 2 else 0
                    admitted.append((in_redis.generation, probe))
            case ("record", index, outcome):
                if not admitted:
                    continue
                generation, probe = admitted.pop(index % len(admitted))
                in_redis = pair.redis_store.record(pair.args, generation, outcome, probe)
                in_memory = pair.memory.record(pair.key, config, generation, outcome, probe)
            case ("advance", ms):
                pair.advance(ms)
                clock[0] = pair.now
                continue
            case ("control", action):
                target = ACTION_TARGET[action]
                in_redis = pair.redis_store.control(pair.args, target, action.value, "me", 0)
                in_memory = pair.memory.control(pair.key, config, target, action.value)
            case ("configure", failures, successes, cooldown):
                rules = SharedRules(failures, successes, cooldown)
                assert pair.redis_store.configure(pair.key, rules) == pair.memory.configure(
                    pair.key, rules
                ), step
                continue
            case _:
                raise AssertionError(step)
        assert in_redis == in_memory, (step, steps)
        in_redis_fields, in_memory_fields = pair.stored()
        assert in_redis_fields == in_memory_fields, (step, steps)


def test_the_differential_test_can_fail(redis_client: redis.Redis) -> None:
    """Guard against a vacuous comparison: a memory store with another rule (threshold off by
    one) is told apart within a few steps."""
    config = BreakerConfig(failure_threshold=2, call_timeout_seconds=0.05)
    clock = [0]
    pair = Pair(
        key=f"differential:{next(_circuits)}",
        config=config,
        memory=MemoryStore(clock=lambda: clock[0]),
        redis_store=RedisStore(redis_client, Scripts.build(TEST_CLOCK)),
        client=redis_client,
    )
    clock[0] = pair.now
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
