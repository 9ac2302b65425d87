"""Benchmark of detection after a burst of alerts with stale statistics.

    python bench/detect_burst.py [--calls N] [--recent N] [--history N] [--cap S] [--catch-up N]
                                 [--slice N] [--json]

One throwaway cluster under /tmp, built as bench/detect.py builds it (a legacy database of N
calls over 30 days, default 600 000, the incident's bad-row rates), then:
- the newest --recent calls (default a third of them) within the last hour (build(recent=...)),
  so that one detection window holds a burst of offending rows;
- --history resolved alerts (default 300 000) on older calls, then ANALYZE: the statistics say
  guard.alerts holds no open alert;
- pass 1: guard.detect() opens an alert for every offending row of the window (the burst);
- pass 2: guard.detect() again BEFORE any ANALYZE: the statistics still say no alert is open.
  The bench cluster runs with autovacuum off (bench/_cluster.py), which is "autoanalyze has not
  run yet" for as long as the measurement lasts;
- pass 3: ANALYZE guard.alerts, then guard.detect() again: the baseline with fresh statistics;
- then passes until every check has read the whole burst (no read_to left in its last
  guard.detection_runs row: a pass reads at most detection_slice_calls calls of the older part of
  its window), at most --catch-up of them, back to back (the detect job runs one every 5 minutes).
During each pass a second session calls guard.check_call(id) for random calls of the window in
a loop (one transaction per call) and records its latency; a baseline with no pass running too.
Every statement runs under statement_timeout = --cap seconds (default 120): a pass that hits it
is shown as "> cap".
Targets: a pass <= 2 s before and after the burst with stale statistics, check_call
p99 <= 20 ms while a pass runs.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_database, print_report, progress
from bench.detect import build

DATABASE = "bench_detect_burst"
PASS_TARGET_S = 2.0
CHECK_CALL_P99_TARGET_MS = 20.0

# Resolved alerts of the call checks on older calls, as months of detection leave them.
HISTORY_SQL = """
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, status,
    first_seen_at, last_seen_at, resolved_at, resolution, delivered_at
)
SELECT
    k.check_id || ':call:' || c.id, k.check_id, c.company_id, 'call', c.id, 'high', 'history',
    'resolved', c.created_at, c.created_at, c.created_at + interval '1 hour', 'fixed',
    c.created_at
FROM (
    SELECT g, (ARRAY['booked_without_appointment', 'flags_contradict_appointments',
                     'call_without_direction', 'recent_booking_failure'])[1 + g %% 4] AS check_id
    FROM generate_series(1, %(history)s) AS g
) AS k
INNER JOIN public.calls AS c ON c.id = %(recent)s + 1 + (k.g * 7) %% (%(calls)s - %(recent)s);
"""


def _sql(template: str, **values: int) -> bytes:
    return (template % {k: str(int(v)) for k, v in values.items()}).encode()


def prepare(
    url: str, calls: int, recent: int, history: int, progress: Any, *, analyze: bool = True
) -> dict[str, Any]:
    """history resolved alerts on the calls with ids recent + 1 to calls (bench/detect.py counts
    ids from the newest call); analyze: VACUUM ANALYZE afterwards (a caller that loads more does
    its own)."""
    progress(f"writing {history:,} resolved alerts")
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(_sql(HISTORY_SQL, history=history, recent=recent, calls=calls))
    with psycopg.connect(url, autocommit=True) as conn:
        if analyze:
            conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT count(*) FROM guard.alerts").fetchone()
    return {"recent": recent, "resolved_alerts": row[0] if row else 0}


class CheckCallClient(threading.Thread):
    """guard.check_call(id) for random calls of the window, one transaction each, until stopped."""

    def __init__(self, url: str, ids: list[int], cap_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.ids, self.cap_s = url, ids, cap_s
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        rng = random.Random(30)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = '{int(self.cap_s * 1000)}ms'".encode())
            conn.execute("SELECT count(*) FROM guard.check_call(%s)", (self.ids[0],))
            self.ready.set()
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    conn.execute(
                        "SELECT count(*) FROM guard.check_call(%s)", (rng.choice(self.ids),)
                    )
                except psycopg.Error as error:
                    self.errors.append(type(error).__name__)
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                time.sleep(0.005)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_pass(
    url: str,
    ids: list[int],
    cap_s: float,
    label: str,
    progress: Any,
    client_url: str | None = None,
) -> dict[str, Any]:
    """One guard.detect() while a client calls guard.check_call (as client_url: default url)."""
    progress(label)
    client = CheckCallClient(client_url or url, ids, cap_s)
    client.start()
    client.ready.wait()
    time.sleep(0.2)  # the client runs before the pass starts, so it meets the pass mid-way
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = '{int(cap_s * 1000)}ms'".encode())
        started = time.perf_counter()
        error = None
        rows: list[tuple[Any, ...]] = []
        try:
            rows = conn.execute("SELECT * FROM guard.detect()").fetchall()
        except psycopg.Error as exc:
            error = type(exc).__name__
        seconds = time.perf_counter() - started
        # Where the pass went: its checks by time taken (guard.detection_runs.duration_ms).
        checks_ms = conn.execute(
            "SELECT check_id, round(duration_ms) FROM guard.detection_runs WHERE pass_started_at ="
            " (SELECT max(pass_started_at) FROM guard.detection_runs) ORDER BY duration_ms DESC"
        ).fetchall()
    client.stop.set()
    client.join()
    return {
        "label": label,
        "seconds": seconds,
        "error": error,
        "opened": sum(r[3] for r in rows),
        "repeated": sum(r[4] for r in rows),
        "resolved": sum(r[5] for r in rows),
        "check_calls": len(client.latencies_ms),
        "check_call_errors": len(client.errors),
        "p50_ms": _quantile(client.latencies_ms, 0.5),
        "p99_ms": _quantile(client.latencies_ms, 0.99),
        "max_ms": max(client.latencies_ms, default=None),
        "checks_ms": {check: int(ms) for check, ms in checks_ms},
    }


def idle_check_calls(url: str, ids: list[int], cap_s: float) -> dict[str, Any]:
    client = CheckCallClient(url, ids, cap_s)
    client.start()
    client.ready.wait()
    time.sleep(3)
    client.stop.set()
    client.join()
    return {
        "label": "no pass running (baseline)",
        "check_calls": len(client.latencies_ms),
        "check_call_errors": len(client.errors),
        "p50_ms": _quantile(client.latencies_ms, 0.5),
        "p99_ms": _quantile(client.latencies_ms, 0.99),
        "max_ms": max(client.latencies_ms, default=None),
    }


def measure(url: str, recent: int, cap_s: float, catch_up: int, progress: Any) -> dict[str, Any]:
    ids = list(range(1, recent + 1))
    idle = idle_check_calls(url, ids, cap_s)
    first = timed_pass(url, ids, cap_s, "pass 1: the burst (opens the window's alerts)", progress)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'open'), (SELECT reltuples FROM pg_class"
            " WHERE oid = 'guard.alerts'::regclass) FROM guard.alerts"
        ).fetchone()
        analyzed = conn.execute(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables"
            " WHERE relid = 'guard.alerts'::regclass"
        ).fetchone()
    progress(f"open alerts {row[0] if row else '?'}; statistics as of {analyzed}")
    second = timed_pass(url, ids, cap_s, "pass 2: stale statistics (no ANALYZE since)", progress)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("ANALYZE guard.alerts")
        analyze_ms = (time.perf_counter() - started) * 1000
    third = timed_pass(url, ids, cap_s, "pass 3: after ANALYZE guard.alerts", progress)
    passes = [first, second, third]
    while _reading_burst(url) and len(passes) < 3 + catch_up:
        passes.append(
            timed_pass(url, ids, cap_s, f"pass {len(passes) + 1}: the rest of the burst", progress)
        )
    with psycopg.connect(url, autocommit=True) as conn:
        row_after = conn.execute(
            "SELECT count(*) FROM guard.alerts WHERE status = 'open'"
        ).fetchone()
    return {
        "open_alerts_after_burst": row[0] if row else None,
        "open_alerts_at_end": row_after[0] if row_after else None,
        "burst_read": not _reading_burst(url),
        "analyze_alerts_ms": analyze_ms,
        "idle": idle,
        "passes": passes,
    }


def _reading_burst(url: str) -> bool:
    """Whether a check's last pass stopped short of the end of its window (read_to)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT FROM (SELECT DISTINCT ON (check_id) read_to"
            " FROM guard.detection_runs ORDER BY check_id, pass_started_at DESC) AS r"
            " WHERE r.read_to IS NOT NULL)"
        ).fetchone()
    return bool(row and row[0])


def targets(result: dict[str, Any], cap_s: float) -> list[dict[str, Any]]:
    passes = result["passes"]
    slowest = max(p["seconds"] for p in passes)
    failed = [p["label"] for p in passes if p["error"]]
    p99s = [p["p99_ms"] for p in passes if p["p99_ms"] is not None]
    worst_p99 = max(p99s, default=float("inf"))
    call_errors = sum(p["check_call_errors"] for p in passes)
    return [
        {
            "target": f"every detection pass <= {PASS_TARGET_S:.0f} s, stale statistics included",
            "result": "PASS" if slowest <= PASS_TARGET_S and not failed else "FAIL",
            "detail": f"slowest {slowest:.2f} s"
            + (f" (hit the {cap_s:.0f} s cap: {', '.join(failed)})" if failed else ""),
        },
        {
            "target": f"check_call p99 <= {CHECK_CALL_P99_TARGET_MS:.0f} ms while a pass runs",
            "result": "PASS"
            if worst_p99 <= CHECK_CALL_P99_TARGET_MS and not call_errors
            else "FAIL",
            "detail": f"worst p99 {worst_p99:.1f} ms, {call_errors} check_call error(s)",
        },
    ]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(header: dict[str, Any], result: dict[str, Any], cap_s: float) -> None:
    print(
        f"Detection after a burst, {header['calls']:,} calls ({header['recent']:,} in the window)"
    )
    print(
        f"  {header['server']}; {header['cores']} cores; {header['resolved_alerts']:,} alerts"
        f" before pass 1 (resolved); {result['open_alerts_after_burst']:,} open after it;"
        f" ANALYZE guard.alerts took {result['analyze_alerts_ms']:.0f} ms;"
        f" detection_slice_calls {header.get('slice_calls')}"
    )
    print()
    print(
        f"{'':<48}{'pass s':>9}{'opened':>8}{'resolved':>9}{'check_calls':>12}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}"
    )
    rows = [result["idle"], *result["passes"]]
    for row in rows:
        seconds = row.get("seconds")
        shown = (
            f"> {cap_s:.0f}"
            if row.get("error") == "QueryCanceled"
            else (f"{seconds:.2f}" if seconds is not None else "-")
        )
        print(
            f"{row['label']:<48}{shown:>9}{row.get('opened', '-'):>8}{row.get('resolved', '-'):>9}"
            f"{row['check_calls']:>12}{_fmt(row['p50_ms'], '.1f'):>9}"
            f"{_fmt(row['p99_ms'], '.1f'):>9}{_fmt(row['max_ms'], '.0f'):>9}"
        )
    print()
    for row in result["passes"]:
        slowest = ", ".join(f"{c} {ms}" for c, ms in list(row["checks_ms"].items())[:4])
        print(f"  {row['label'].split(':')[0]}, slowest checks (ms): {slowest}")
    print(
        f"  {len(result['passes'])} passes; the burst "
        + ("read whole by then" if result["burst_read"] else "NOT read whole by then")
        + f"; {result['open_alerts_at_end']:,} alerts open at the end"
    )
    for goal in targets(result, cap_s):
        print(f"  {goal['result']:<5} {goal['target']}: {goal['detail']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600_000, help="calls to load")
    parser.add_argument("--recent", type=int, help="calls in the last hour (default: a third)")
    parser.add_argument("--history", type=int, default=300_000, help="resolved alerts")
    parser.add_argument("--cap", type=float, default=120.0, help="statement_timeout, seconds")
    parser.add_argument(
        "--catch-up", type=int, default=30, help="passes at most after pass 3 to read the burst"
    )
    parser.add_argument(
        "--slice", type=int, help="detection_slice_calls (default: the shipped setting)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    recent = args.recent or args.calls // 3
    with bench_database(DATABASE) as (cluster, server):
        url = cluster.url(DATABASE)
        built = build(url, args.calls, progress, recent)
        prepared = prepare(url, args.calls, recent, args.history, progress)
        with psycopg.connect(url, autocommit=True) as conn:
            if args.slice is not None:
                conn.execute(
                    "UPDATE guard.settings SET value = to_jsonb(%s::integer)"
                    " WHERE key = 'detection_slice_calls'",
                    (args.slice,),
                )
            row = conn.execute("SELECT guard.setting('detection_slice_calls')").fetchone()
            prepared["slice_calls"] = row[0] if row else None
        result = measure(url, recent, args.cap, args.catch_up, progress)

    header = {
        "server": server,
        "cores": os.cpu_count(),
        "calls": built["calls"],
        **prepared,
    }
    print_report(
        args.json,
        {"header": header, **result, "targets": targets(result, args.cap)},
        lambda: print_table(header, result, args.cap),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
