"""A second client of the breaker's protocol, in PHP (tests/laravel/breaker, written from
docs/breaker-protocol.md and loading the same script files), shares circuits with Python
processes on one real Redis: failures counted in either language open the circuit for both, a
trip in either stops both, and a half-open circuit admits exactly one probe across languages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.breaker import Backend, BreakerConfig, CircuitBreaker, CircuitOpenError, State
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
    executable = shutil.which("php")
    assert executable is not None, "php is not installed: run `make setup` (php-cli)"
    env = dict(
        os.environ,
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(redis.port),
        GUARD_BREAKER_SCRIPTS=str(SCRIPTS),
    )
    args = {"failure_threshold": THRESHOLD, **args}
    return subprocess.Popen(
        [executable, str(PHP_BREAKER), command, json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def python_breaker(redis: RedisServer, key: str, cooldown: float = 60.0) -> CircuitBreaker:
    config = BreakerConfig(
        failure_threshold=THRESHOLD,
        success_threshold=1,
        cooldown_seconds=cooldown,
        call_timeout_seconds=None,
    )
    return CircuitBreaker(key, config, backend=Backend(redis.url))


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
    time.sleep(0.5)  # the PHP probe holds the lease
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "a second probe")
    assert json.loads(probe.communicate(timeout=60)[0]) == {"result": "ok", "called": 1}
    assert _state(breaker) is State.CLOSED, "the PHP probe's success closed it for Python"
    assert breaker.call(lambda: "after") == "after"
