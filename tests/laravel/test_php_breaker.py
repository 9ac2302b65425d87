"""A second client of the breaker's protocol, in PHP (tests/laravel/breaker, written from
docs/breaker-protocol.md and loading the same script files), shares circuits with Python
processes on one real Redis: failures counted in either language open the circuit for both, a
trip in either stops both, and a half-open circuit admits exactly one probe across languages. And
the state machine's scenarios (those of tests/breaker/test_breaker_state_machine.py that the
protocol decides, as steps both clients run) give the same observations in both languages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.breaker import (
    Backend,
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    Outcome,
    State,
    Ticket,
)
from guard.breaker.state import PROBE_LEASE_WITHOUT_TIMEOUT_MS
from tests.laravel.conftest import start_php
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
PHP_BREAKER = ROOT / "tests" / "laravel" / "breaker" / "run.php"
SCRIPTS = ROOT / "guard" / "breaker" / "scripts"
THRESHOLD = 3


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def php(redis: RedisServer, command: str, **args: Any) -> dict[str, Any]:
    return json.loads(php_process(redis, command, **args).communicate(timeout=60)[0])  # type: ignore[no-any-return]


def php_process(redis: RedisServer, command: str, **args: Any) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(redis.port),
        GUARD_BREAKER_SCRIPTS=str(SCRIPTS),
    )
    return start_php(PHP_BREAKER, command, {"failure_threshold": THRESHOLD, **args}, env)


def python_breaker(redis: RedisServer, key: str, cooldown: float = 60.0) -> CircuitBreaker:
    config = BreakerConfig(
        failure_threshold=THRESHOLD,
        success_threshold=1,
        cooldown_seconds=cooldown,
        call_timeout_seconds=None,
    )
    return CircuitBreaker(key, config, backend=Backend(redis.url))


def _lease_held(breaker: CircuitBreaker) -> bool:
    """A probe lease on the circuit runs now (read from Redis, taking nothing)."""
    stored, now_ms = breaker.backend.sync_store.read_with_time(breaker.key)
    return int(stored.get("pu") or 0) > now_ms


def _state(breaker: CircuitBreaker) -> State | None:
    """The circuit's state now (a function: mypy would keep the narrowing of the property)."""
    return breaker.state


def _fail() -> None:
    raise ConnectionError("calendar unavailable")


def test_failures_in_php_open_the_circuit_for_python(redis_server: RedisServer) -> None:
    key = "appointment_booking:service:71"
    breaker = python_breaker(redis_server, key)
    for _ in range(THRESHOLD - 1):
        # the calendar's own error, after the PHP client counted it (a Redis error says "redis:")
        assert php(redis_server, "call", key=key, fail=True) == {"error": "calendar unavailable"}
    assert _state(breaker) is State.CLOSED
    with pytest.raises(ConnectionError):
        breaker.call(_fail)  # the third failure, counted from Python
    assert _state(breaker) is State.OPEN
    refused = php(redis_server, "call", key=key)
    assert "refused" in refused, refused


def test_a_trip_in_either_language_stops_both(redis_server: RedisServer) -> None:
    key = "appointment_booking:service:72"
    breaker = python_breaker(redis_server, key)
    assert php(redis_server, "call", key=key) == {"result": "ok", "called": 1}
    assert php(redis_server, "trip", key=key) == {"code": 1, "state": "forced_open"}
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "not called")
    assert _state(breaker) is State.FORCED_OPEN
    other = "appointment_booking:service:73"
    python_breaker(redis_server, other).force_open("from python")
    assert "refused" in php(redis_server, "call", key=other)


def test_a_half_open_circuit_admits_one_probe_across_languages(redis_server: RedisServer) -> None:
    key = "appointment_booking:service:74"
    cooldown = 0.5
    breaker = python_breaker(redis_server, key, cooldown=cooldown)
    for _ in range(THRESHOLD):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    assert _state(breaker) is State.OPEN
    time.sleep(cooldown + 0.2)
    probe = php_process(redis_server, "call", key=key, seconds=1.5, cooldown_ms=500)
    # the PHP probe holds the lease (for its 1.5 s call): waited for, since a loaded machine
    # takes more than a fixed 0.5 s to start PHP at times, and then Python's call is the probe
    deadline = time.monotonic() + 30
    while not _lease_held(breaker) and time.monotonic() < deadline:
        assert probe.poll() is None, "the PHP process ended before it held the probe lease"
        time.sleep(0.01)
    assert _lease_held(breaker), "the PHP process never held the probe lease"
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "a second probe")
    assert json.loads(probe.communicate(timeout=60)[0]) == {"result": "ok", "called": 1}
    assert _state(breaker) is State.CLOSED, "the PHP probe's success closed it for Python"
    assert breaker.call(lambda: "after") == "after"


def test_the_php_clients_lease_is_pythons_for_a_call_without_a_timeout() -> None:
    """The PHP client has no call timeout: by default it asks for the probe lease Python asks
    for when its calls have none, so that a crashed probe frees the circuit alike."""
    lease = PROBE_LEASE_WITHOUT_TIMEOUT_MS
    client = (PHP_BREAKER.parent / "CircuitBreaker.php").read_text()
    assert f"private int $leaseMs = {lease}," in client
    assert f"$args['lease_ms'] ?? {lease}" in PHP_BREAKER.read_text()


# -- the state machine's scenarios, as steps both clients run ---------------------------------
# A step is [action, client, ...]; every step observes one thing. Clients are separate breaker
# objects (another process's view) on one circuit. Rules: 3 failures open, 2 probe successes
# close, a 300 ms cool-down.
SCENARIO_RULES = {"failure_threshold": 3, "success_threshold": 2, "cooldown_ms": 300}
SCENARIO_CONFIG = BreakerConfig(
    failure_threshold=3, success_threshold=2, cooldown_seconds=0.3, call_timeout_seconds=0.1
)
# a probe's lease (the call timeout and a margin): a crashed probe's lapses after it
LEASE_LAPSED_MS = SCENARIO_CONFIG.probe_lease_ms + 100
OPEN = [["call", "a", "fail"]] * 3
SCENARIOS: dict[str, tuple[list[list[Any]], list[str]]] = {
    "opens after the threshold and stops calling": (
        [*OPEN, ["state", "a"], ["call", "a", "ok"], ["call", "b", "ok"]],
        ["error", "error", "error", "open", "refused", "refused"],
    ),
    "a success resets the consecutive failures": (
        [["call", "a", "fail"]] * 2
        + [["call", "a", "ok"]]
        + [["call", "a", "fail"]] * 2
        + [["state", "a"]],
        ["error", "error", "ok", "error", "error", "closed"],
    ),
    "half open after the cool-down, closed after two probe successes": (
        [
            *OPEN,
            ["sleep", 350],
            ["call", "a", "ok"],
            ["state", "a"],
            ["call", "a", "ok"],
            ["state", "a"],
        ],
        ["error"] * 3 + ["slept", "ok", "half_open", "ok", "closed"],
    ),
    "a failure in half open opens again": (
        [*OPEN, ["sleep", 350], ["call", "a", "fail"], ["state", "a"], ["call", "b", "ok"]],
        ["error"] * 3 + ["slept", "error", "open", "refused"],
    ),
    "half open admits one probe at a time": (
        [
            *OPEN,
            ["sleep", 350],
            ["acquire", "a", "t1"],
            ["acquire", "b", "t2"],
            ["release", "a", "t1", "success"],
            ["acquire", "b", "t3"],
        ],
        ["error"] * 3 + ["slept", "probe", "refused", "released", "probe"],
    ),
    "a crashed probe's lease expires": (
        [
            *OPEN,
            ["sleep", 350],
            ["acquire", "a", "t1"],
            ["acquire", "b", "t2"],
            ["sleep", LEASE_LAPSED_MS],
            ["acquire", "b", "t3"],
        ],
        ["error"] * 3 + ["slept", "probe", "refused", "slept", "probe"],
    ),
    "an outcome of an older generation is ignored": (
        [
            ["acquire", "a", "t1"],
            *[["call", "b", "fail"]] * 3,
            ["sleep", 350],
            ["call", "b", "ok"],
            ["release", "a", "t1", "failure"],
            ["state", "b"],
            ["call", "b", "ok"],
            ["state", "b"],
        ],
        ["call", "error", "error", "error", "slept", "ok", "released", "half_open", "ok", "closed"],
    ),
    "manual states are obeyed": (
        [
            ["call", "a", "ok"],
            ["trip", "a"],
            ["call", "a", "ok"],
            ["reset", "a"],
            ["call", "a", "ok"],
            *OPEN,
            ["state", "a"],
        ],
        ["ok", "forced_open", "refused", "closed", "ok", "error", "error", "error", "open"],
    ),
}


def _python_scenario(redis: RedisServer, key: str, steps: list[list[Any]]) -> list[str | None]:
    clients: dict[str, CircuitBreaker] = {}
    tickets: dict[str, Ticket] = {}
    observed: list[str | None] = []

    def client(name: str) -> CircuitBreaker:
        if name not in clients:
            clients[name] = CircuitBreaker(key, SCENARIO_CONFIG, backend=Backend(redis.url))
        return clients[name]

    def call(breaker: CircuitBreaker, fails: bool) -> str:
        try:
            breaker.call(_fail if fails else lambda: "ok")
        except CircuitOpenError:
            return "refused"
        except ConnectionError:
            return "error"
        return "ok"

    for step in steps:
        action = step[0]
        if action == "sleep":
            time.sleep(step[1] / 1000)
            observed.append("slept")
        elif action == "call":
            observed.append(call(client(step[1]), step[2] == "fail"))
        elif action == "acquire":
            try:
                tickets[step[2]] = client(step[1]).acquire()
            except CircuitOpenError:
                observed.append("refused")
            else:
                observed.append("probe" if tickets[step[2]].probe_seq > 0 else "call")
        elif action == "release":
            outcome = Outcome.SUCCESS if step[3] == "success" else Outcome.FAILURE
            client(step[1]).release(tickets[step[2]], outcome)
            observed.append("released")
        elif action == "state":
            state = _state(client(step[1]))
            observed.append(state.name.lower() if state is not None else None)
        elif action == "trip":
            observed.append(client(step[1]).force_open("scenario").name.lower())
        elif action == "reset":
            observed.append(client(step[1]).reset("scenario").name.lower())
        else:
            raise AssertionError(f"unknown step {step}")
    return observed


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_state_machine_scenario_runs_alike_in_both_languages(
    redis_server: RedisServer, name: str
) -> None:
    steps, expected = SCENARIOS[name]
    key = "appointment_booking:scenario:" + re.sub(r"[^A-Za-z0-9]+", "_", name)
    assert _python_scenario(redis_server, key + ":python", steps) == expected
    reply = php(
        redis_server,
        "scenario",
        key=key + ":php",
        rules=SCENARIO_RULES,
        lease_ms=SCENARIO_CONFIG.probe_lease_ms,
        steps=steps,
    )
    assert reply == {"observed": expected}
