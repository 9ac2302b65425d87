"""`guard watch` under production volume: peak memory with very large alert details, and the cost
of one wake-up with a large backlog on a channel that is down.

1. memory: --big alerts whose details are about --mb MB each (a rollback context: nested JSON of
   calendar request/response records, as guard.rollback_booking stores), delivered by a real
   `guard watch --once --channel webhook` subprocess to a local webhook receiver; its peak RSS
   from os.wait4 (that child alone). Target: <= 200 MB.
2. backlog: --backlog undelivered alerts on a webhook channel whose URL is a closed port (every
   send fails and backs off); then each statement one wake-up runs (enqueue, claim, release, next
   due time): median time over 5 runs, and the rows it read (seq + index tuples of
   guard.alerts and guard.deliveries, from pg_stat_xact_user_tables in a rolled-back
   transaction), and the claim's plan.

Prints tables (or JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from bench._cluster import bench_database, progress
from bench.cli_output import ROLLED_BACK_ALERTS
from guard.demo.embedded import free_port
from guard.ops.dispatch.outbox import DeliveryStore
from guard.schema.migrate import Migrator

TARGET_PEAK_RSS_MB = 200.0
GUARD = str(Path(sys.executable).with_name("guard"))


class _Sink(BaseHTTPRequestHandler):
    received = 0
    largest = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Sink.received += 1
        _Sink.largest = max(_Sink.largest, len(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class GuardRun:
    """One `guard` command run as a child process."""

    peak_rss_mb: float  # os.wait4: that child alone, not this process nor its other children
    exit_code: int
    seconds: float
    stderr: str


def run_guard(args: Sequence[str], env: Mapping[str, str] | None = None) -> GuardRun:
    """`guard ARGS` as a child (stdout discarded); its peak RSS, exit code, time and stderr."""
    started = time.perf_counter()
    # stderr to a file, not a pipe: nothing reads a pipe while we wait, and a full one stalls it
    with tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(
            [GUARD, *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        stderr.seek(0)
        text = stderr.read().decode(errors="replace")
    return GuardRun(usage.ru_maxrss / 1024, child.returncode, seconds, text)


def _watch(url: str, webhook: str, *extra: str) -> tuple[float, int, float]:
    """Run `guard watch --once` as a child; (peak RSS MB, exit code, seconds)."""
    run = run_guard(
        ["watch", "--once", "--channel", "webhook", "--webhook-rate", "0", *extra],
        {"GUARD_DATABASE_URL": url, "GUARD_SLACK_WEBHOOK_URL": webhook},
    )
    return run.peak_rss_mb, run.exit_code, run.seconds


def memory(url: str, big: int, mb: float, progress: Any) -> dict[str, Any]:
    # ~1/3 of the size in records of ~170 bytes of text, the rest in one long string.
    records = max(1, int(mb * 1024 * 1024 / 3 / 170))
    chunks = max(1, int(mb * 1024 * 1024 * 2 / 3 / 32))
    progress(f"inserting {big} alerts with details of about {mb} MB")
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, big, 20):
            conn.execute(
                ROLLED_BACK_ALERTS,
                {"records": records, "chunks": chunks, "n": min(20, big - start), "start": start},
            )
        row = conn.execute(
            "SELECT avg(octet_length(details::text)), max(octet_length(details::text))"
            " FROM guard.alerts"
        ).fetchone()
        assert row is not None
        avg_mb, max_mb = float(row[0]) / 2**20, float(row[1]) / 2**20
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        progress("guard watch --once --channel webhook")
        peak, code, seconds = _watch(url, f"http://127.0.0.1:{server.server_address[1]}/hook")
    finally:
        server.shutdown()
        server.server_close()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*)"
            " FROM guard.deliveries WHERE kind = 'alert' AND channel = 'webhook'"
        ).fetchone()
        assert row is not None
        delivered, rows = int(row[0]), int(row[1])
        conn.execute("DELETE FROM guard.deliveries")
        conn.execute("DELETE FROM guard.alerts")
    return {
        "alerts": big,
        "details_mb_avg": round(avg_mb, 2),
        "details_mb_max": round(max_mb, 2),
        "peak_rss_mb": round(peak, 1),
        "exit_code": code,
        "seconds": round(seconds, 1),
        "delivered": delivered,
        "delivery_rows": rows,
        "largest_message_bytes": _Sink.largest,
    }


def _rows_read(url: str, work: Callable[[DeliveryStore], object]) -> int:
    """Tuples of guard.alerts and guard.deliveries that `work` read (seq + index), in one
    transaction that is rolled back (so a claim changes nothing)."""
    with psycopg.connect(url, autocommit=True) as conn:
        store = DeliveryStore(conn)
        conn.autocommit = False  # the store wants autocommit; here one transaction is the point
        work(store)
        row = conn.execute(
            "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)"
            " FROM pg_stat_xact_user_tables"
            " WHERE schemaname = 'guard' AND relname IN ('alerts', 'deliveries')"
        ).fetchone()
        conn.rollback()
    return int(row[0]) if row else 0


def backlog(url: str, n: int, progress: Any) -> dict[str, Any]:
    progress(f"inserting {n} undelivered alerts")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details)"
            " SELECT 'bench:backlog:' || g, 'booked_without_appointment', 1, 'call', g, 'high',"
            " 'booked but no appointment', '{\"appointment_made\": true}'"
            " FROM generate_series(1, %s) AS g",
            (n,),
        )
    # A channel that is down: nothing listens on this port. Three runs: three failed sends.
    dead = f"http://127.0.0.1:{free_port()}/hook"
    progress("guard watch --once against a closed port (x3)")
    for _ in range(3):
        _watch(url, dead, "--retry-base", "0.01")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE guard.alerts, guard.deliveries")
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= now()),"
            " count(*) FILTER (WHERE attempts > 0)"
            " FROM guard.deliveries WHERE kind = 'alert' AND channel = 'webhook'"
            " AND status = 'pending'"
        ).fetchone()
        assert row is not None
        pending, due, failed_once = (int(v) for v in row)
    worker = "bench:1"
    channels = ["webhook"]
    wake_up: dict[str, Callable[[DeliveryStore], object]] = {
        "enqueue": lambda store: store.enqueue(channels),
        "claim (200 rows)": lambda store: store.claim("alert", "webhook", worker, 200, 60.0),
        "release": lambda store: store.release("webhook", worker),
        "next due time": lambda store: store.seconds_until_due([("alert", "webhook")]),
    }
    result: dict[str, Any] = {
        "pending": pending,
        "due": due,
        "failed_at_least_once": failed_once,
        "statements": {},
    }
    with psycopg.connect(url, autocommit=True) as conn:
        store = DeliveryStore(conn)
        for name, work in wake_up.items():
            times = []
            for _ in range(5):
                started = time.perf_counter()
                work(store)
                times.append((time.perf_counter() - started) * 1000)
                store.release("webhook", worker)  # the claim's rows are due again
            result["statements"][name] = {
                "ms": round(statistics.median(times), 2),
                "rows_read": _rows_read(url, work),
            }
        plan = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)"
            " SELECT q.subject FROM guard.deliveries AS q"
            " WHERE q.kind = 'alert' AND q.channel = 'webhook' AND q.status = 'pending'"
            " AND q.next_attempt_at <= now()"
            " AND (q.claimed_until IS NULL OR q.claimed_until < now())"
            " ORDER BY q.next_attempt_at, q.subject LIMIT 200 FOR UPDATE SKIP LOCKED"
        ).fetchall()
        result["claim_plan"] = [str(r[0]) for r in plan]
    result["wake_up_ms"] = round(sum(s["ms"] for s in result["statements"].values()), 1)
    return result


def run(big: int, mb: float, backlog_n: int, progress: Any) -> dict[str, Any]:
    with bench_database("bench") as (cluster, _server):
        url = cluster.url("bench")
        with Migrator(url) as migrator:
            migrator.apply()
        return {
            "cores": os.cpu_count(),
            "memory": memory(url, big, mb, progress) if big else None,
            "backlog": backlog(url, backlog_n, progress) if backlog_n else None,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=300, help="alerts with large details")
    parser.add_argument("--mb", type=float, default=2.0, help="size of each one's details")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--plan", action="store_true", help="print the claim's plan")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.big, args.mb, args.backlog, progress)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    mem = result["memory"]
    if mem:
        verdict = "PASS" if mem["peak_rss_mb"] <= TARGET_PEAK_RSS_MB else "FAIL"
        print(
            f"guard watch --once: {mem['alerts']} alerts, details {mem['details_mb_avg']} MB"
            f" each (max {mem['details_mb_max']})"
        )
        print(f"{'peak RSS MB':>12} {'exit':>5} {'seconds':>8} {'delivered':>10} {'max msg B':>10}")
        print(
            f"{mem['peak_rss_mb']:12.1f} {mem['exit_code']:5d} {mem['seconds']:8.1f}"
            f" {mem['delivered']:>5}/{mem['delivery_rows']:<4} {mem['largest_message_bytes']:10d}"
        )
        print(f"target: peak RSS <= {TARGET_PEAK_RSS_MB:g} MB: {verdict}")
    back = result["backlog"]
    if back:
        print(
            f"\none wake-up, webhook down: {back['pending']} pending ({back['due']} due,"
            f" {back['failed_at_least_once']} failed at least once)"
        )
        print(f"{'statement':20} {'ms (median)':>12} {'rows read':>10}")
        for name, figures in back["statements"].items():
            print(f"{name:20} {figures['ms']:12.2f} {figures['rows_read']:10d}")
        print(f"{'wake-up, total':20} {back['wake_up_ms']:12.1f}")
        if args.plan:
            print("\nclaim plan:\n" + "\n".join(back["claim_plan"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
