"""A Redis shared with a cache evicts the breaker's keys (issue 31, item 1).

Real servers only: a ``redis-server`` started with a small ``maxmemory`` and
``allkeys-lru`` (what a Redis shared with a cache often runs), filled with cache-like keys
until it has really evicted the circuit's hash (``INFO stats`` ``evicted_keys`` > 0 and the
hash gone), and the harness's migrated PostgreSQL, which records manual actions.

The memory store has no eviction (it is per process and never drops a circuit), so these
scenarios are about the Redis store only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from guard.breaker import (
    BreakerConfig,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpenError,
    Outcome,
    State,
)
from guard.breaker.redis_store import hash_key
from tests.support.breakers import fail_calls
from tests.support.cli import BreakerCli, breaker_cli
from tests.support.queries import fetch_one
from tests.support.redis_server import RedisServer

CONFIG = BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None)
LRU = ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")


@pytest.fixture
def lru_redis() -> Iterator[RedisServer]:
    with RedisServer(extra_args=LRU) as server:
        yield server


@pytest.fixture
def cli(db_url: str, lru_redis: RedisServer) -> BreakerCli:
    return breaker_cli(db_url, lru_redis.url)


def evict(url: str, key: str) -> int:
    """Cache traffic until Redis has evicted the circuit's hash; returns ``evicted_keys``.
    Fails (instead of passing vacuously) if the hash survives 40 MB of cache writes."""
    client = redis.Redis.from_url(url)
    try:
        value = b"x" * 1024
        for batch in range(400):
            with client.pipeline(transaction=False) as pipe:
                for i in range(100):
                    pipe.set(f"cache:{batch}:{i}", value)
                pipe.execute()
            if not client.exists(hash_key(key)):
                break
        assert not client.exists(hash_key(key)), "the circuit's hash was never evicted"
        evicted = int(client.info("stats")["evicted_keys"])
        assert evicted > 0
        return evicted
    finally:
        client.close()


def restored_total(key: str) -> float:
    value = REGISTRY.get_sample_value("guard_breaker_state_restored_total", {"key": key})
    return value or 0.0


class Calendar:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return "booked"


def booking_process(db_url: str, lru_redis: RedisServer) -> contextlib.closing[BreakerRegistry]:
    """The breakers of a booking process: a registry of its own on the evicting Redis."""
    return contextlib.closing(BreakerRegistry.from_settings(db_url, redis_url=lru_redis.url))


def _calls_admitted(breaker: CircuitBreaker, calendar: Calendar, attempts: int = 10) -> int:
    before = calendar.calls
    for _ in range(attempts):
        with contextlib.suppress(CircuitOpenError):
            breaker.call(calendar)
    return calendar.calls - before


def test_a_trip_survives_eviction_of_its_redis_keys(
    cli: BreakerCli, db_url: str, lru_redis: RedisServer, key: str
) -> None:
    """The issue's run: trip with --create, cache traffic evicts the circuit, a booking
    process (its own registry, as another process has) must still see forced_open."""
    tripped = cli("trip", key, "--create", "--reason", "calendar maintenance", "--json")
    assert tripped.exit_code == 0, tripped.stderr
    evict(lru_redis.url, key)
    # Redis is still at maxmemory, and its LRU clock ticks once a second: a hash restored in the
    # same second as the cache writes looks as old as they do and may be the next one evicted
    # (seen once in a loaded run). A second later it is the newest key, never chosen.
    time.sleep(1.1)

    with booking_process(db_url, lru_redis) as registry:
        booking = registry.get(key)
        calendar = Calendar()
        before = restored_total(key)
        with pytest.raises(CircuitOpenError) as rejected:
            booking.call(calendar)
        assert rejected.value.state is State.FORCED_OPEN
        assert _calls_admitted(booking, calendar) == 0
        assert calendar.calls == 0
        assert restored_total(key) == before + 1

    shown = cli("show", key, "--json")
    assert shown.exit_code == 0, shown.stderr
    view = json.loads(shown.stdout)
    # Redis holds the restored state again, and it agrees with PostgreSQL.
    assert (view["state"], view["source"]) == ("forced_open", "redis")
    row = fetch_one(
        db_url, "SELECT state, generation FROM guard.breaker_state WHERE key = %s", (key,)
    )
    assert row == ("forced_open", view["generation"])


def test_configured_rules_and_the_window_do_not_survive_eviction(
    cli: BreakerCli, db_url: str, lru_redis: RedisServer, key: str
) -> None:
    """What eviction keeps and what it loses, as things are: the trip comes back from
    PostgreSQL; the rules `guard breaker configure` stored (the failure-rate window's too) and
    the window's calls were only in Redis, so after the restore the processes' own rules apply
    again (first writer wins) and the window is gone."""
    configured = cli(
        "configure", key, "--cooldown", "600", "--failure-rate", "50",
        "--window-size", "10", "--minimum-calls", "4",
    )  # fmt: skip
    assert configured.exit_code == 0, configured.stderr
    with booking_process(db_url, lru_redis) as registry:
        booking = registry.get(key)  # guard.settings' rules: 3 in a row, 30 s, no window
        calendar = Calendar()

        def down() -> None:
            raise ConnectionError("calendar down")

        for fn in (down, calendar, down):
            with contextlib.suppress(ConnectionError):
                booking.call(fn)
        snapshot = booking.snapshot()
        assert snapshot.rules is not None and snapshot.rules.window_size == 10
        assert snapshot.window.calls == 3
        assert cli("trip", key, "--reason", "calendar maintenance").exit_code == 0
        evict(lru_redis.url, key)

        with pytest.raises(CircuitOpenError) as rejected:
            booking.call(calendar)
        assert rejected.value.state is State.FORCED_OPEN  # restored from PostgreSQL
        assert cli("reset", key, "--reason", "maintenance over").exit_code == 0
        time.sleep(1.1)  # the process obeys within local_state_ttl_seconds
        booking.call(calendar)  # the first decision after the loss stores its own rules
        snapshot = booking.snapshot()
        assert snapshot.rules == booking.config.shared_rules  # configured rules: lost
        assert not snapshot.rules.has_window and snapshot.window.calls == 0
        for i in range(10):  # alternating failures: the window no longer opens the circuit
            with contextlib.suppress(ConnectionError):
                booking.call(down if i % 2 else calendar)
        assert booking.state is State.CLOSED


@pytest.mark.parametrize(
    ("action", "state", "calendar_called"),
    [("force-close", State.FORCED_CLOSED, True), ("disable", State.DISABLED, True)],
)
def test_other_manual_states_are_restored_exactly(
    cli: BreakerCli,
    db_url: str,
    lru_redis: RedisServer,
    key: str,
    action: str,
    state: State,
    calendar_called: bool,
) -> None:
    assert cli("trip", key, "--create", "--reason", "planned").exit_code == 0
    assert cli(action, key, "--reason", "known good").exit_code == 0
    evict(lru_redis.url, key)
    with booking_process(db_url, lru_redis) as registry:
        booking = registry.get(key)
        assert booking.state is state
        calendar = Calendar()
        assert _calls_admitted(booking, calendar) == 10
        fail_calls(CircuitBreaker(key, CONFIG, backend=registry.backend), 5)
        assert booking.state is state  # forced closed / disabled: failures never trip it


def test_an_open_circuit_comes_back_open_with_its_cooldown(
    db_url: str, lru_redis: RedisServer, key: str
) -> None:
    with booking_process(db_url, lru_redis) as registry:
        fail_calls(registry.get(key), 3)
        assert registry.writer is not None and registry.writer.flush()
    evict(lru_redis.url, key)

    with booking_process(db_url, lru_redis) as other:
        calendar = Calendar()
        with pytest.raises(CircuitOpenError) as rejected:
            other.get(key).call(calendar)
        assert rejected.value.state is State.OPEN
        assert rejected.value.retry_after is not None and 25 < rejected.value.retry_after <= 30
        assert calendar.calls == 0


def test_an_outcome_reported_after_eviction_does_not_recreate_a_closed_circuit(
    cli: BreakerCli, db_url: str, lru_redis: RedisServer, key: str
) -> None:
    """A call admitted before the trip finishes after the eviction: its outcome (RECORD) must
    restore the trip, not write a fresh closed circuit."""
    with booking_process(db_url, lru_redis) as registry:
        booking = registry.get(key)
        booking.call(Calendar())
        ticket = booking.acquire()  # in flight …
        assert cli("trip", key, "--reason", "calendar maintenance").exit_code == 0
        evict(lru_redis.url, key)
        booking.release(ticket, Outcome.SUCCESS)  # … and done after the eviction
        raw = redis.Redis.from_url(lru_redis.url).hget(hash_key(key), "st")
        # Redis is still at maxmemory after the cache traffic and may evict the restored hash
        # again at once (seen once in a loaded run); what must never be there is a closed circuit.
        assert raw in (str(int(State.FORCED_OPEN)).encode(), None)
        booking._known = None  # past local_state_ttl_seconds
        with pytest.raises(CircuitOpenError):
            booking.call(Calendar())


def test_a_new_circuit_is_still_created_closed_without_a_restore(
    db_url: str, lru_redis: RedisServer, key: str
) -> None:
    with booking_process(db_url, lru_redis) as registry:
        calendar = Calendar()
        assert _calls_admitted(registry.get(key), calendar) == 10
        assert registry.get(key).state is State.CLOSED
        assert restored_total(key) == 0


def test_async_calls_restore_the_trip_too(
    cli: BreakerCli, db_url: str, lru_redis: RedisServer, key: str
) -> None:
    assert cli("trip", key, "--create", "--reason", "calendar maintenance").exit_code == 0
    evict(lru_redis.url, key)
    registry = BreakerRegistry.from_settings(db_url, redis_url=lru_redis.url)

    async def book() -> str:
        return "booked"

    async def scenario() -> None:
        with pytest.raises(CircuitOpenError) as rejected:
            await registry.get(key).call_async(book)
        assert rejected.value.state is State.FORCED_OPEN

    try:
        asyncio.run(scenario())
    finally:
        registry.close()


def test_start_up_warns_when_redis_can_evict_the_breaker(
    lru_redis: RedisServer, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{lru_redis.port}/0"
    client = redis.Redis.from_url(lru_redis.url)
    client.config_set("requirepass", "s3cret-pw")
    client.close()
    with caplog.at_level(logging.WARNING, logger="guard.breaker"):
        registry = BreakerRegistry(url, default=CONFIG)
        try:
            for _ in range(3):
                registry.get(key).call(Calendar())
                registry.service(777).call(Calendar())
        finally:
            registry.close()
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per process, not per circuit or call
    [warning] = warnings
    assert "maxmemory-policy allkeys-lru (maxmemory 2097152 bytes)" in warning
    assert "Set maxmemory-policy noeviction, or a volatile-* policy" in warning
    assert "manual states exactly" in warning and "failure counts" in warning
    assert "s3cret-pw" not in caplog.text and ":***@127.0.0.1" in warning


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru"])
def test_no_warning_when_redis_keeps_the_breaker_keys(
    policy: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The breaker sets no TTL on its keys, so volatile-* policies never evict them."""
    with RedisServer(extra_args=("--maxmemory", "2mb", "--maxmemory-policy", policy)) as server:
        with caplog.at_level(logging.WARNING, logger="guard.breaker"):
            registry = BreakerRegistry(server.url, default=CONFIG)
            try:
                registry.get(key).call(Calendar())
            finally:
                registry.close()
        ttl = redis.Redis.from_url(server.url).ttl(hash_key(key))
    assert ttl == -1  # no TTL: what makes volatile-* safe
    assert "maxmemory-policy" not in caplog.text


def test_refused_config_is_said_not_fatal(key: str, caplog: pytest.LogCaptureFixture) -> None:
    """Managed Redis often refuses CONFIG: the breaker says it could not check, and works."""
    with (
        RedisServer(extra_args=(*LRU, "--rename-command", "CONFIG", '""')) as server,
        caplog.at_level(logging.WARNING, logger="guard.breaker"),
    ):
        registry = BreakerRegistry(server.url, default=CONFIG)
        try:
            assert registry.get(key).call(Calendar()) == "booked"
        finally:
            registry.close()
    assert "could not check the maxmemory-policy of Redis" in caplog.text
    assert "noeviction, or a volatile-* policy" in caplog.text


def test_the_cli_warns_on_stderr(cli: BreakerCli, key: str) -> None:
    result = cli("trip", key, "--create", "--reason", "calendar maintenance")
    assert result.exit_code == 0, result.stderr
    assert "guard: warning: Redis at redis://127.0.0.1:" in result.stderr
    assert "maxmemory-policy allkeys-lru" in result.stderr
