"""Benchmark of the circuit breaker: one run, one table (``--json`` for the same figures).

    python bench/breaker.py [--redis-url URL] [--calls N] [--rounds R] [--json]

Without ``--redis-url`` a throwaway ``redis-server`` is started on a free loopback port.
Every row is measured in the same run, interleaved round by round (so that load from other
processes on the machine hits all rows alike), and reported as the median and p99 of single
calls. Ratios are against the Redis PING round trip of the same run (redis-py ``ping()``), and
against a PING sent the raw way the breaker's fast path sends its scripts (packed once, written
to a pooled connection): that column compares like with like. The "default configuration" rows
use ``BreakerConfig()`` as shipped (no call timeout: a sync call runs on the caller's thread); the
"sync timeout" rows configure one (10 s), which runs the call on the circuit's worker thread. The
peers (pybreaker, in memory and with ``CircuitRedisStorage``; tenacity for the retry wrapper) are
measured in the same rounds, and a second table gives Booking Guard's median over the peer's for
each pair (targets: the shipped default in memory at most pybreaker's, a trip at most 1.5x, the
retry wrapper at most 1.2x tenacity's).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guard.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError
from guard.breaker.redis_store import RedisStore, make_client, pack_command
from guard.retry import Retry, RetryPolicy

# name: (the target as printed, whether a median (us) against PING (us) meets it)
NO_TARGET: tuple[str, Callable[[float, float], bool] | None] = ("", None)
TARGETS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "guard_redis": ("<= 1.3x PING", lambda median, ping: median <= 1.3 * ping),
    "guard_reject_open": ("<= 5 us", lambda median, ping: median <= 5.0),
    "guard_memory": ("<= 2 us", lambda median, ping: median <= 2.0),
}


def noop() -> None:
    return None


def _measure(
    fn: Callable[[], Any], calls: int, samples: list[float], setup: Callable[[], Any] | None
) -> None:
    clock = time.perf_counter_ns
    for _ in range(calls):
        if setup is not None:
            setup()  # not timed: puts the circuit back where the timed call starts
        started = clock()
        fn()
        samples.append((clock() - started) / 1000)


# Booking Guard's row, the peer's row, and the most Booking Guard's median may be of the peer's.
PEER_PAIRS: list[tuple[str, str, float]] = [
    ("guard_memory_default", "pybreaker_memory", 1.0),
    ("guard_memory", "pybreaker_memory", 1.0),
    ("guard_trip_memory", "pybreaker_trip_memory", 1.5),
    ("retry_success", "tenacity_success", 1.2),
    ("guard_redis_default", "pybreaker_redis", 1.0),
    ("guard_redis", "pybreaker_redis", 1.0),
]


def _rejecting(breaker: CircuitBreaker) -> Callable[[], None]:
    def call() -> None:
        with contextlib.suppress(CircuitOpenError):
            breaker.call(noop)

    return call


Row = tuple[str, Callable[[], Any]] | tuple[str, Callable[[], Any], Callable[[], Any]]


def _failing(call: Callable[[Callable[[], None]], Any]) -> Callable[[], None]:
    def trip() -> None:
        with contextlib.suppress(Exception):
            call(_fail)

    return trip


def _ping_raw(store: RedisStore) -> Any:
    """PING sent exactly the way decisions are sent (the like-for-like floor)."""
    if store._pool is None:
        return store.client.ping()
    return store._send_raw([pack_command("PING")])


def _closed_and_serving(
    close: Callable[[str], Any], call: Callable[[Callable[[], None]], Any]
) -> None:
    close("bench")
    call(noop)


def build_rows(redis_url: str) -> dict[str, Row]:
    import pybreaker  # comparison only; never imported by guard/
    import tenacity  # comparison only; never imported by guard/

    client = make_client(redis_url)
    fast = BreakerConfig(call_timeout_seconds=None, cooldown_seconds=3600)
    with_timeout = BreakerConfig(call_timeout_seconds=10, cooldown_seconds=3600)

    raw_store = RedisStore(make_client(redis_url))
    guard_redis = CircuitBreaker("bench:redis", fast, redis_url=redis_url)
    guard_timeout = CircuitBreaker("bench:redis-timeout", with_timeout, redis_url=redis_url)
    guard_default = CircuitBreaker("bench:redis-default", BreakerConfig(), redis_url=redis_url)
    guard_memory = CircuitBreaker("bench:memory", fast, in_memory=True)
    guard_open = CircuitBreaker("bench:open", fast, redis_url=redis_url)
    for _ in range(fast.failure_threshold):
        with contextlib.suppress(ConnectionError):
            guard_open.call(_fail)
    retry = Retry(RetryPolicy())
    # the same rules as RetryPolicy(): 3 attempts, full jitter from 50 ms to 2 s, a 10 s deadline
    tenacious = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(10),
        wait=tenacity.wait_random_exponential(multiplier=0.05, max=2),
        reraise=True,
    )
    guard_memory_default = CircuitBreaker("bench:memory-default", BreakerConfig(), in_memory=True)
    guard_memory_timeout = CircuitBreaker("bench:memory-timeout", with_timeout, in_memory=True)
    py_memory = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=3600)
    # a trip: the one failure of a threshold of 1 opens a circuit that was serving calls (closed
    # again and a call made, untimed, before each)
    guard_trips = CircuitBreaker(
        "bench:trip", BreakerConfig(failure_threshold=1, call_timeout_seconds=None), in_memory=True
    )
    py_trips = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)

    py_client = make_client(redis_url)
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, py_client, namespace="bench")
    py_breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=3600, state_storage=storage)

    return {
        "redis_ping": ("Redis PING round trip (redis-py)", client.ping),
        "redis_ping_raw": (
            "Redis PING sent like the fast path (packed, raw)",
            functools.partial(_ping_raw, raw_store),
        ),
        "pybreaker_redis": (
            "pybreaker + CircuitRedisStorage, no-op call",
            lambda: py_breaker.call(noop),
        ),
        "guard_redis": ("Booking Guard via Redis, no-op call", lambda: guard_redis.call(noop)),
        "guard_redis_sync_timeout": (
            "Booking Guard via Redis, sync timeout (10 s, worker thread)",
            lambda: guard_timeout.call(noop),
        ),
        "guard_redis_default": (
            "Booking Guard via Redis, default configuration (no timeout)",
            lambda: guard_default.call(noop),
        ),
        "guard_reject_open": (
            "Booking Guard rejecting, known-open circuit",
            _rejecting(guard_open),
        ),
        "guard_memory": ("Booking Guard in memory, no-op call", lambda: guard_memory.call(noop)),
        "guard_memory_default": (
            "Booking Guard in memory, default configuration (no timeout)",
            lambda: guard_memory_default.call(noop),
        ),
        "guard_memory_sync_timeout": (
            "Booking Guard in memory, sync timeout (10 s, worker thread)",
            lambda: guard_memory_timeout.call(noop),
        ),
        "pybreaker_memory": ("pybreaker in memory, no-op call", lambda: py_memory.call(noop)),
        "guard_trip_memory": (
            "Booking Guard in memory, the failure that opens the circuit",
            _failing(guard_trips.call),
            lambda: _closed_and_serving(guard_trips.reset, guard_trips.call),
        ),
        "pybreaker_trip_memory": (
            "pybreaker in memory, the failure that opens the circuit",
            _failing(py_trips.call),
            lambda: _closed_and_serving(lambda _reason: py_trips.close(), py_trips.call),
        ),
        "retry_success": ("Retry wrapper, successful call", lambda: retry.call(noop)),
        "tenacity_success": ("tenacity, successful call", lambda: tenacious(noop)),
    }


def _fail() -> None:
    raise ConnectionError("bench")


def run(redis_url: str, calls: int, rounds: int) -> dict[str, Any]:
    rows = build_rows(redis_url)
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(2):  # warm-up: connections, script cache, branch caches
        for row in rows.values():
            _measure(row[1], 200, [], row[2] if len(row) == 3 else None)
    for _ in range(rounds):
        for name, row in rows.items():
            _measure(row[1], calls, samples[name], row[2] if len(row) == 3 else None)
    ping = statistics.median(samples["redis_ping"])
    raw_ping = statistics.median(samples["redis_ping_raw"])
    results = []
    for name, row in rows.items():
        label = row[0]
        ordered = sorted(samples[name])
        median = statistics.median(ordered)
        target, check = TARGETS.get(name, NO_TARGET)
        results.append(
            {
                "name": name,
                "label": label,
                "calls": len(ordered),
                "median_us": round(median, 2),
                "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 2),
                "x_ping": round(median / ping, 2),
                "x_raw_ping": round(median / raw_ping, 2),
                "target": target,
                "meets_target": None if check is None else bool(check(median, ping)),
            }
        )
    try:
        import hiredis  # noqa: F401

        parser = "hiredis"
    except ImportError:
        parser = "python"
    medians = {str(row["name"]): float(str(row["median_us"])) for row in results}
    peers = [
        {
            "guard": ours,
            "peer": theirs,
            "ratio": round(medians[ours] / medians[theirs], 2),
            "at_most": limit,
            "meets_target": medians[ours] / medians[theirs] <= limit,
        }
        for ours, theirs, limit in PEER_PAIRS
    ]
    return {
        "redis_parser": parser,
        "calls_per_row": calls * rounds,
        "rows": results,
        "peers": peers,
    }


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"circuit breaker benchmark (redis-py parser: {report['redis_parser']})",
        title_justify="left",
    )
    for column in ("row", "median µs", "p99 µs", "x PING", "x raw PING", "target", "met"):
        table.add_column(column)
    for row in report["rows"]:
        met = {True: "yes", False: "NO", None: ""}[row["meets_target"]]
        table.add_row(
            row["label"],
            f"{row['median_us']:.2f}",
            f"{row['p99_us']:.2f}",
            f"{row['x_ping']:.2f}",
            f"{row['x_raw_ping']:.2f}",
            row["target"],
            met,
        )
    Console(soft_wrap=True).print(table)
    peers = Table(
        title="Booking Guard against its peers (median / peer's median)", title_justify="left"
    )
    for column in ("Booking Guard", "peer", "ratio", "target", "met"):
        peers.add_column(column)
    for pair in report["peers"]:
        peers.add_row(
            pair["guard"],
            pair["peer"],
            f"{pair['ratio']:.2f}",
            f"<= {pair['at_most']:g}x",
            "yes" if pair["meets_target"] else "NO",
        )
    Console(soft_wrap=True).print(peers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="use this Redis instead of a throwaway server")
    parser.add_argument("--calls", type=int, default=2000, help="calls per row per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    server = None
    redis_url = args.redis_url
    if redis_url is None:
        from tests.support.redis_server import RedisServer

        server = RedisServer().start()
        redis_url = server.url
    try:
        report = run(redis_url, args.calls, args.rounds)
    finally:
        if server is not None:
            server.cleanup()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
