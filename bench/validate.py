"""guard.validate_booking latency over 10 000 bookings on a database of 1 000 000 calls.

Prints a table (or JSON with --json): the client-side round trip (what an application waits
for) and the server-side time validate_booking records in guard.validation_metrics, p50/p95/
p99, next to a `SELECT 1` round trip measured in the same run. Target: p95 <= 1 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

import psycopg

from bench._cluster import bench_database, print_report, progress
from guard.schema.migrate import Migrator

TARGET_P95_MS = 1.0


def _load(url: str, calls: int, progress: Any) -> None:
    with Migrator(url) as migrator:
        migrator.apply()
    with psycopg.connect(url, autocommit=True) as conn:
        progress(f"loading {calls} calls and as many appointments")
        conn.execute(
            "INSERT INTO companies (id, name) SELECT g, 'c' || g FROM generate_series(1, 3) g"
        )
        conn.execute(
            "INSERT INTO calls (company_id, retell_call_id, direction, created_at)"
            " SELECT 1 + g %% 3, 'r' || g, 'inbound', now() - make_interval(secs => g %% 2592000)"
            " FROM generate_series(1, %s) AS g",
            (calls,),
        )
        conn.execute(
            "INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id, source)"
            " SELECT c.company_id, c.id, 'uid-' || c.id, 'retell_webhook' FROM calls AS c"
        )
        # Every appointment counts as just made, so validation runs every check to the end.
        conn.execute(
            "UPDATE guard.settings SET value = '86400' WHERE key = 'validation_recent_seconds'"
        )
        conn.execute("VACUUM ANALYZE")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "mean": statistics.fmean(ordered),
    }


def run(calls: int, validations: int, progress: Any) -> dict[str, Any]:
    with bench_database("bench") as (cluster, _server):
        url = cluster.url("bench")
        started = time.perf_counter()
        _load(url, calls, progress)
        load_seconds = time.perf_counter() - started
        rng = random.Random(7)
        ids = [rng.randrange(1, calls + 1) for _ in range(validations)]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT 1")
            ping: list[float] = []
            for _ in range(validations):
                t = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                ping.append(1000 * (time.perf_counter() - t))
            rows = conn.execute(
                "SELECT a.call_id, a.id, a.calcom_v2_booking_id FROM appointments AS a"
                " WHERE a.call_id = ANY(%s)",
                (ids,),
            ).fetchall()
            by_call = {call_id: (appointment_id, uid) for call_id, appointment_id, uid in rows}
            conn.execute("TRUNCATE guard.validation_metrics")
            client: list[float] = []
            failures = 0
            progress(f"validating {validations} bookings")
            for call_id in ids:
                appointment_id, uid = by_call[call_id]
                t = time.perf_counter()
                row = conn.execute(
                    "SELECT ok FROM guard.validate_booking(%s, %s, %s)",
                    (call_id, appointment_id, uid),
                ).fetchone()
                client.append(1000 * (time.perf_counter() - t))
                failures += 0 if row and row[0] else 1
            server = [
                value
                for (value,) in conn.execute(
                    "SELECT latency_ms FROM guard.validation_metrics"
                ).fetchall()
            ]
    return {
        "calls": calls,
        "validations": validations,
        "failures": failures,
        "load_seconds": round(load_seconds, 1),
        "cores": os.cpu_count(),
        "rows": {
            "SELECT 1 round trip": _percentiles(ping),
            "validate_booking, client round trip": _percentiles(client),
            "validate_booking, server side": _percentiles(server),
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"validate_booking: {result['validations']} bookings on {result['calls']} calls"
        f" ({result['cores']} cores, load {result['load_seconds']} s, {result['failures']} failed)"
    )
    print(f"{'':38} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, figures in result["rows"].items():
        print(
            f"{name:38} {figures['p50']:8.3f} {figures['p95']:8.3f} {figures['p99']:8.3f}"
            f" {figures['mean']:8.3f}"
        )
    target = result["target"]
    verdict = "PASS" if target["pass"] else "FAIL"
    print(f"target: client p95 <= {TARGET_P95_MS} ms: {target['client_p95_ms']:.3f} ms {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--validations", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.calls, args.validations, progress)
    client_p95 = result["rows"]["validate_booking, client round trip"]["p95"]
    result["target"] = {
        "p95_ms_max": TARGET_P95_MS,
        "client_p95_ms": client_p95,
        "pass": client_p95 <= TARGET_P95_MS,
    }
    print_report(args.json, result, lambda: print_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
