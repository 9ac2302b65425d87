"""Clocks and garbage in Redis (issue 71, row 10).

An OPEN circuit waits at most its configured cooldown, whatever Redis's clock did: a clock that
went back a day left the circuit "opened" a day after Redis's now, and it stayed open 86,429 s
instead of 30. Redis's clock cannot be moved in a test; a jump leaves exactly this in the hash:
an opened-at (``oa``) ahead of Redis ``TIME``, which the test writes into the real hash.

A state in Redis that does not exist is restored from PostgreSQL's record (``guard.breaker_state``,
through ``guard.breaker_restore_state``), not repaired to ``open``; the repair is a transition,
in Redis's event list and in ``guard.breaker_events``.
"""

from __future__ import annotations

import time
from typing import cast

import psycopg
import pytest
import redis

from guard.breaker import BreakerConfig, BreakerRegistry, CircuitBreaker, CircuitOpenError, State
from guard.breaker.redis_store import events_key, hash_key
from tests.support.queries import fetch_all, fetch_one
from tests.support.redis_server import RedisServer

DAY_MS = 86_400_000
COOLDOWN = 0.3
CONFIG = BreakerConfig(
    failure_threshold=1,
    cooldown_seconds=COOLDOWN,
    call_timeout_seconds=None,
    local_state_ttl_seconds=0,  # every decision asks Redis
)


def _events(client: redis.Redis, key: str) -> list[bytes]:
    """The circuit's Redis event list, newest first."""
    return cast(list[bytes], client.lrange(events_key(key), 0, -1))


def _down() -> None:
    raise ConnectionError("calendar down")


def _opened(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConnectionError):
        breaker.call(_down)
    assert breaker.state is State.OPEN


@pytest.mark.parametrize("jump_ms", [DAY_MS, 2000])
def test_an_open_circuit_waits_no_longer_than_its_cooldown_when_the_clock_went_back(
    redis_server: RedisServer, key: str, jump_ms: int
) -> None:
    """A day, and a jump of a few cooldowns: each is repaired, and the circuit probes once its
    cooldown, counted from the decision that saw the jump, is over."""
    client = redis.Redis.from_url(redis_server.url)
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    try:
        _opened(breaker)
        seconds, micros = client.time()
        opened_at = seconds * 1000 + micros // 1000 + jump_ms  # opened "after" Redis's now
        client.hset(hash_key(key), "oa", opened_at)

        shown = breaker.snapshot()
        assert shown.recovers_in_seconds is not None
        assert shown.recovers_in_seconds <= COOLDOWN, "what operators see is bounded too"
        with pytest.raises(CircuitOpenError) as refused:
            breaker.call(lambda: "booked")
        assert refused.value.retry_after is not None and refused.value.retry_after <= COOLDOWN
        [repair, *_] = _events(client, key)
        assert b"ahead of the clock" in repair, repair
        assert int(client.hget(hash_key(key), "oa") or 0) < opened_at - jump_ms + 1000

        time.sleep(COOLDOWN + 0.1)
        assert breaker.call(lambda: "booked") == "booked", "the probe went through"
    finally:
        breaker.backend.close()
        client.close()


def test_an_open_circuit_opened_in_the_past_keeps_its_cooldown(
    redis_server: RedisServer, key: str
) -> None:
    """The other side: an opened-at at Redis's now or before is no jump; nothing is repaired
    and the cooldown runs from the opening."""
    client = redis.Redis.from_url(redis_server.url)
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_server.url)
    try:
        _opened(breaker)
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: "booked")
        assert not any(b"repaired" in e for e in _events(client, key))
        time.sleep(COOLDOWN + 0.1)
        assert breaker.call(lambda: "booked") == "booked"
    finally:
        breaker.backend.close()
        client.close()


@pytest.mark.parametrize(
    ("recorded", "calls_pass"), [("closed", True), ("forced_open", False), ("open", False)]
)
def test_a_state_that_does_not_exist_is_restored_from_postgresql_and_recorded(
    db_url: str, redis_server: RedisServer, key: str, recorded: str, calls_pass: bool
) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.breaker_state (key, state, generation, failure_count,"
            " success_count, opened_at, changed_at)"
            " VALUES (%s, %s, 5, 0, 0, CASE WHEN %s = 'closed' THEN NULL ELSE now() END, now())",
            (key, recorded, recorded),
        )
    client = redis.Redis.from_url(redis_server.url)
    registry = BreakerRegistry.from_settings(
        db_url, redis_url=redis_server.url, templates={"appointment_booking:": CONFIG}
    )
    try:
        breaker = registry.get(key)
        breaker.snapshot()  # Redis has the circuit: restored from the row
        assert client.hget(hash_key(key), "st") is not None
        client.hset(hash_key(key), "st", b"banana")

        try:
            assert breaker.call(lambda: "booked") == "booked"
            passed = True
        except CircuitOpenError:
            passed = False
        assert passed is calls_pass
        assert breaker.state is State.from_label(recorded)
        repairs = [e for e in _events(client, key) if b"repaired: st=" in e]
        assert len(repairs) == 1, repairs
    finally:
        registry.close()
        client.close()
    events = fetch_all(
        db_url,
        "SELECT from_state, to_state, reason FROM guard.breaker_events WHERE key = %s"
        " AND reason LIKE 'repaired%%'",
        (key,),
    )
    state = fetch_one(
        db_url, "SELECT state, generation FROM guard.breaker_state WHERE key = %s", (key,)
    )
    assert events == [(recorded, recorded, "repaired: st='banana'")]
    assert state[0] == recorded and state[1] > 5
