"""What psycopg's automatic prepared statements save on the booking path and guard.check_call.

Behind a transaction pooler (PgBouncer) a statement psycopg prepared on one server
connection is missing on the next, so Booking Guard opens every connection with
prepare_threshold=None and the booking path runs every statement with prepare=False. This
measures what that costs on a direct connection, durable commits (synchronous_commit on), on a
throwaway cluster: per call, p50 and mean, and the ratio of each p50 to psycopg's default
(prepare_threshold=5: a query is prepared at its 5th execution) measured in the same run.

- booking path: the statements of guard.booking.book_appointment (guard.begin_booking, then
  guard.record_booking: two transactions) replayed with each setting,
  the calendar instant; and book_appointment itself (which says prepare=False on every
  statement, whatever the connection's threshold);
- check_call: `SELECT guard.check_call(id)` on a booked call.

The variants run in turns of 50 calls so drift in the machine's speed spreads over all of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench._cluster import bench_cluster, print_report, progress
from guard import booking, queries
from guard.booking import BookingStatus, CalendarBooking, book_appointment
from guard.breaker import BreakerRegistry
from guard.retry import RetryPolicy
from guard.schema.migrate import Migrator
from tests.support.seeds import seed_calls_to_book

SERVICE = 7
TURN = 50
Conn = psycopg.Connection[tuple[Any, ...]]
# (name, prepare_threshold of the connection, prepare= of each execute)
SETTINGS: list[tuple[str, int | None, bool | None]] = [
    ("prepare_threshold=5 (default)", 5, None),
    ("prepare_threshold=None", None, None),
    ("prepare=False per execute", 5, False),
]


def _load(url: str, calls: int) -> None:
    with Migrator(url) as migrator:
        migrator.apply()
    seed_calls_to_book(url, SERVICE, calls, customer=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _replay(conn: Conn, call_id: int, prepare: bool | None) -> None:
    """The booking path's statements, as guard.booking runs them, with `prepare`."""
    with conn.transaction():
        row = conn.execute(
            queries.BEGIN_BOOKING, (call_id, SERVICE, 0, None), prepare=prepare
        ).fetchone()
    assert row is not None and row[0] == "started", row
    key = str(row[2])
    made = CalendarBooking(uid=f"uid-{key}", details={"slot": "10:00"})
    recorded = conn.execute(
        queries.RECORD_BOOKING,
        booking._record_args(key, made, "retell_webhook", 1),
        prepare=prepare,
    ).fetchone()
    assert recorded is not None and recorded[0] == "booked", recorded


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(samples), "mean": statistics.fmean(samples)}


def run(iterations: int, progress: Callable[[str], None]) -> dict[str, Any]:
    variants = len(SETTINGS) + 1  # the replays and book_appointment itself
    calls = iterations * variants
    with bench_cluster(durable=True) as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE guard_bench_prepared")
        url = cluster.url("guard_bench_prepared")
        progress(f"migrating and loading {calls} calls")
        _load(url, calls)
        with psycopg.connect(url, autocommit=True) as conn:
            setting = conn.execute("SHOW synchronous_commit").fetchone()
        conns = {name: psycopg.connect(url, autocommit=True, prepare_threshold=threshold)
                 for name, threshold, _ in SETTINGS}  # fmt: skip
        library = psycopg.connect(url, autocommit=True)  # the application's: psycopg's defaults
        breakers = BreakerRegistry(in_memory=True)
        booking_ms: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
        booking_ms["book_appointment (threshold 5)"] = []
        check_ms: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
        next_call = iter(range(1, calls + 1))
        booked: list[int] = []
        try:
            progress(f"booking path: {iterations} calls per variant")
            for _ in range(0, iterations, TURN):
                for name, _, prepare in SETTINGS:
                    for _ in range(TURN):
                        call_id = next(next_call)
                        started = time.perf_counter()
                        _replay(conns[name], call_id, prepare)
                        booking_ms[name].append(1000 * (time.perf_counter() - started))
                        booked.append(call_id)
                for _ in range(TURN):
                    call_id = next(next_call)
                    started = time.perf_counter()
                    outcome = book_appointment(
                        library,
                        call_id=call_id,
                        service_id=SERVICE,
                        book=lambda key: CalendarBooking(uid=f"uid-{key}"),
                        breakers=breakers,
                        retry_policy=RetryPolicy(max_attempts=1),
                    )
                    booking_ms["book_appointment (threshold 5)"].append(
                        1000 * (time.perf_counter() - started)
                    )
                    assert outcome.status is BookingStatus.BOOKED, outcome
                    booked.append(call_id)
            progress(f"check_call: {iterations} calls per variant")
            targets = iter(booked * 2)
            for _ in range(0, iterations, TURN):
                for name, _, prepare in SETTINGS:
                    for _ in range(TURN):
                        started = time.perf_counter()
                        conns[name].execute(
                            "SELECT guard.check_call(%s)", (next(targets),), prepare=prepare
                        ).fetchall()
                        check_ms[name].append(1000 * (time.perf_counter() - started))
        finally:
            breakers.close()
            library.close()
            for conn in conns.values():
                conn.close()
    default = SETTINGS[0][0]
    rows = []
    for operation, samples in (("booking path", booking_ms), ("check_call", check_ms)):
        base = _summary(samples[default])["p50"]
        for name, values in samples.items():
            figures = _summary(values)
            rows.append(
                {"operation": operation, "variant": name, **figures, "ratio": figures["p50"] / base}
            )
    return {
        "iterations": iterations,
        "synchronous_commit": setting[0] if setting else None,
        "cores": os.cpu_count(),
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"prepared statements: {result['iterations']} calls per variant, direct connection,"
        f" synchronous_commit {result['synchronous_commit']} ({result['cores']} cores)"
    )
    print(f"{'operation':14} {'variant':32} {'p50 ms':>8} {'mean ms':>8} {'p50 vs default':>15}")
    for row in result["rows"]:
        print(
            f"{row['operation']:14} {row['variant']:32} {row['p50']:8.3f} {row['mean']:8.3f}"
            f" {row['ratio']:14.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="calls per variant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    iterations = max(TURN, args.iterations // TURN * TURN)
    result = run(iterations, progress)
    print_report(args.json, result, lambda: print_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
