"""A 3-node Redis Cluster on loopback: the scripts route by hash tag and work on every node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis.cluster

from guard.breaker import BreakerConfig, BreakerRegistry, CircuitOpenError, State
from guard.breaker.redis_store import make_client
from guard.ops.breaker_operator import circuit_keys
from tests.support.redis_server import RedisCluster

CONFIG = BreakerConfig(cooldown_seconds=0.3, call_timeout_seconds=None)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as running:
        yield running


def _down() -> None:
    raise ConnectionError("booking API down")


def test_circuits_on_every_node_follow_the_state_machine(cluster: RedisCluster) -> None:
    registry = BreakerRegistry(cluster.url, default=CONFIG)
    keys = [registry.service(i).key for i in range(12)]
    client = redis.cluster.RedisCluster.from_url(cluster.url.replace("+cluster", ""))
    node_of = client.get_node_from_key
    nodes = {
        node_of(f"guard:breaker:{{{k}}}").port  # type: ignore[no-untyped-call]  # untyped in redis-py
        for k in keys
    }
    assert len(nodes) == 3  # the keys really are spread over the three primaries

    for key in keys:
        breaker = registry.get(key)
        for _ in range(3):
            with pytest.raises(ConnectionError):
                breaker.call(_down)
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    time.sleep(0.35)
    for key in keys:
        breaker = registry.get(key)
        breaker.call(lambda: None)
        breaker.call(lambda: None)
        snapshot = breaker.snapshot()  # read on the circuit's own node, with that node's clock
        assert (snapshot.state, snapshot.generation, snapshot.source) == (State.CLOSED, 3, "redis")
    assert not registry.backend.health.down  # never fell back to the per-process store
    # Manual actions and stored rules work on a cluster too.
    breaker = registry.get(keys[0])
    breaker.force_open("maintenance")
    assert breaker.snapshot().state is State.FORCED_OPEN
    assert breaker.configure() == breaker.config.shared_rules
    assert set(circuit_keys(make_client(cluster.url))) >= set(keys)
    registry.close()


def test_async_on_cluster(cluster: RedisCluster) -> None:
    registry = BreakerRegistry(cluster.url, default=CONFIG)
    breaker = registry.staff(7)

    async def scenario() -> None:
        async def down() -> None:
            raise ConnectionError("booking API down")

        for _ in range(3):
            with pytest.raises(ConnectionError):
                await breaker.call_async(down)
        with pytest.raises(CircuitOpenError):
            await breaker.call_async(asyncio.sleep, 0)

    asyncio.run(scenario())
    assert breaker.state is State.OPEN and not registry.backend.health.down
    registry.close()
