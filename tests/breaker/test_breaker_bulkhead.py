"""Bulkheads: a hung dependency behind one circuit never delays another circuit.

The dependencies are real: a threaded HTTP server on a free loopback port whose ``/hang`` path
blocks until the test releases it and whose ``/ok`` path answers at once. The breakers share one
Redis and one ``Backend`` (one process), as the circuits of a ``BreakerRegistry`` do.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import REGISTRY

from guard.breaker import (
    Backend,
    BreakerConfig,
    BreakerEvent,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    EventKind,
    GuardedCallTimeout,
    State,
)

HUNG_CALLS = 32


class Dependency:
    """A real HTTP dependency: ``/ok`` answers at once, ``/hang`` waits for ``release``,
    ``/fail`` answers 503. Counts the requests it received per path."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests: Counter[str] = Counter()
        lock = threading.Lock()
        dependency = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    dependency.requests[self.path] += 1
                if self.path == "/hang":
                    dependency.release.wait(60)
                status = 503 if self.path == "/fail" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.server.server_port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            body: bytes = response.read()
            return body

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dependency() -> Iterator[Dependency]:
    served = Dependency()
    yield served
    served.close()


def _hang(breaker: CircuitBreaker, dependency: Dependency, calls: int) -> list[threading.Thread]:
    def one() -> None:
        with contextlib.suppress(GuardedCallTimeout, CircuitOpenError):
            breaker.call(dependency.get, "/hang")

    threads = [threading.Thread(target=one, daemon=True) for _ in range(calls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while dependency.requests["/hang"] < calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dependency.requests["/hang"] == calls
    return threads


def _timed_calls(breaker: CircuitBreaker, dependency: Dependency, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        assert breaker.call(dependency.get, "/ok") == b"ok"
        latencies.append(time.perf_counter() - started)
    return latencies


def test_32_hung_calls_on_a_leave_b_calls_and_probes_untouched(
    backend: Backend, dependency: Dependency, key: str
) -> None:
    """The failure the shared timeout pool had: 32 hung calls through A made every call through
    B time out without reaching B's dependency, and B opened. Now A's hung calls hold A's own
    threads only: B's calls reach B's dependency, at the latency they had before, and B's
    half-open probe is admitted and closes B."""
    # A opens only when every hung call has timed out: on a busy machine the first timeouts come
    # before the last threads start, and an A open after 3 would turn those away unhung.
    a_config = BreakerConfig(
        call_timeout_seconds=0.3, failure_threshold=HUNG_CALLS, cooldown_seconds=30
    )
    b_config = BreakerConfig(call_timeout_seconds=2.0, failure_threshold=3, cooldown_seconds=0.3)
    a = CircuitBreaker(f"{key}:a", a_config, backend=backend)
    b = CircuitBreaker(f"{key}:b", b_config, backend=backend)

    before = _timed_calls(b, dependency, 30)
    hung = _hang(a, dependency, HUNG_CALLS)
    for thread in hung:
        thread.join(timeout=10)  # every hung call timed out for its caller...
    assert a.in_flight == HUNG_CALLS  # ...but its code is still running and keeps its slot
    assert a.state is State.OPEN

    during = _timed_calls(b, dependency, 30)
    assert dependency.requests["/ok"] == 60  # every B call reached B's dependency
    print(
        f"\nB median latency: {statistics.median(before) * 1e3:.2f} ms before, "
        f"{statistics.median(during) * 1e3:.2f} ms with {HUNG_CALLS} hung calls on A "
        f"(max during {max(during) * 1e3:.2f} ms; B's timeout 2000 ms)"
    )

    # B trips on its own failures, then its probe runs while A is still hung.
    for _ in range(3):
        with pytest.raises(Exception, match="503"):
            b.call(dependency.get, "/fail")
    assert b.state is State.OPEN
    time.sleep(0.35)
    assert b.call(dependency.get, "/ok") == b"ok"  # the probe, admitted and answered
    assert b.call(dependency.get, "/ok") == b"ok"
    assert b.state is State.CLOSED  # type: ignore[comparison-overlap]  # state is re-read, mypy keeps it narrowed
    assert a.in_flight == HUNG_CALLS

    dependency.release.set()
    deadline = time.monotonic() + 10
    while a.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert a.in_flight == 0  # slots come back when the hung code finally returns


def test_bulkhead_rejections_are_counted_apart_from_open_rejections(
    backend: Backend, dependency: Dependency, key: str
) -> None:
    config = BreakerConfig(call_timeout_seconds=30, max_concurrent_calls=4, cooldown_seconds=30)
    a = CircuitBreaker(key, config, backend=backend)
    events: list[BreakerEvent] = []
    a.add_listener(events.append)

    def scraped() -> float | None:
        return REGISTRY.get_sample_value(
            "guard_breaker_rejections_total", {"key": key, "reason": "bulkhead"}
        )

    assert scraped() == 0

    hung = _hang(a, dependency, 4)
    with pytest.raises(BulkheadFullError) as full:
        a.call(dependency.get, "/ok")
    assert isinstance(full.value, CircuitOpenError)  # fallbacks for rejections still apply
    assert full.value.limit == 4 and "bulkhead full" in str(full.value)
    assert dependency.requests["/ok"] == 0  # the dependency was not called
    snapshot = a.snapshot()
    assert (snapshot.rejected_bulkhead, snapshot.rejected_open, snapshot.in_flight) == (1, 0, 4)
    assert snapshot.state is State.CLOSED and snapshot.failure_count == 0  # nothing counted
    assert scraped() == 1  # what /metrics of the application process shows
    assert [e.kind for e in events if e.kind is not EventKind.SUCCESS] == [EventKind.BULKHEAD_FULL]

    dependency.release.set()
    for thread in hung:
        thread.join(timeout=10)
    assert a.call(dependency.get, "/ok") == b"ok"

    a.force_open("maintenance")
    with pytest.raises(CircuitOpenError) as rejected:
        a.call(dependency.get, "/ok")
    assert not isinstance(rejected.value, BulkheadFullError)
    assert a.snapshot().rejected_open == 1


def test_async_calls_and_guard_blocks_hold_a_slot(backend: Backend, key: str) -> None:
    import asyncio

    config = BreakerConfig(call_timeout_seconds=5, max_concurrent_calls=2)
    a = CircuitBreaker(key, config, backend=backend)

    async def scenario() -> None:
        gate = asyncio.Event()

        async def hang() -> None:
            await gate.wait()

        tasks = [asyncio.create_task(a.call_async(hang)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert a.in_flight == 2
        with pytest.raises(BulkheadFullError):
            await a.call_async(hang)
        with pytest.raises(BulkheadFullError):
            async with a.guard():
                pass
        gate.set()
        await asyncio.gather(*tasks)
        assert a.in_flight == 0
        async with a.guard():
            assert a.in_flight == 1

    asyncio.run(scenario())
    with a.guard():
        assert a.in_flight == 1
    assert a.in_flight == 0
