"""What the reading commands cost with very large details: peak memory and output size of
`guard review list`, `guard alerts list` and `guard alerts show` (and `guard review show`) as real
child processes, over --items review items and alerts whose details are about --mb MB each (a
rollback context: nested JSON of calendar request/response records and a long raw answer, as
guard.rollback_booking stores).

Each command runs as a child (`guard ...`, stdout to a file): its peak RSS from os.wait4 (that
child alone), the bytes it printed, its time and exit code. Target: every list and show command
under 200 MB and 2 MB of output whatever the details weigh; the whole value is one `--full` away.

Prints a table (or JSON with --json).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench._cluster import bench_database, print_report, progress
from guard.schema.migrate import Migrator

TARGET_PEAK_RSS_MB = 200.0
TARGET_OUTPUT_MB = 2.0
GUARD = str(Path(sys.executable).with_name("guard"))

# A rollback context: records of the calendar exchange and a long raw answer. md5 text, so TOAST
# cannot compress it away.
ROLLBACK_DETAILS = """
jsonb_build_object(
    'reason', 'calendar_booking_failure',
    'still_booked', false,
    'calendar_exchange', (
        SELECT jsonb_agg(jsonb_build_object(
            'seq', r, 'request', md5(a || ':' || r) || md5(r || ':' || a),
            'response', repeat(md5(r || '-' || a), 3)))
        FROM generate_series(1, %(records)s) AS r
    ),
    'raw_response', (
        SELECT string_agg(md5(a || '/' || r), '') FROM generate_series(1, %(chunks)s) AS r
    )
)
"""
_ITEMS = f"""
INSERT INTO guard.review_items (company_id, call_id, reason, details)
SELECT 1, %(start)s + a, 'calendar_booking_failure', {ROLLBACK_DETAILS}
FROM generate_series(1, %(n)s) AS a
"""
ROLLED_BACK_ALERTS = f"""
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity,
    message, details)
SELECT 'bench:' || (%(start)s + a), 'booking_rolled_back', 1, 'call', %(start)s + a, 'high',
    'a booking failed and was rolled back; a review item is queued', {ROLLBACK_DETAILS}
FROM generate_series(1, %(n)s) AS a
"""


@dataclass(frozen=True)
class Run:
    command: str
    peak_rss_mb: float
    output_mb: float
    seconds: float
    exit_code: int


def run_guard(url: str, args: Sequence[str]) -> Run:
    """`guard ARGS` as a child; its peak RSS (os.wait4), bytes printed, time and exit code."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [GUARD, "--database-url", url, *args], stdout=out, stderr=err, env=dict(os.environ)
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        size = out.seek(0, os.SEEK_END)
        err.seek(0)
        problem = err.read().decode(errors="replace").strip()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"[bench] guard {' '.join(args)}: exit {code}: {problem[-300:]}", file=sys.stderr)
    return Run("guard " + " ".join(args), usage.ru_maxrss / 1024, size / 2**20, seconds, code)


def _exists(url: str, args: Sequence[str]) -> bool:
    done = subprocess.run(
        [GUARD, "--database-url", url, *args, "--help"], capture_output=True, check=False
    )
    return done.returncode == 0


def load(url: str, n: int, mb: float, progress: Any) -> dict[str, Any]:
    # ~1/3 of the size in records of ~170 bytes of text, the rest in one long string.
    records = max(1, int(mb * 1024 * 1024 / 3 / 170))
    chunks = max(1, int(mb * 1024 * 1024 * 2 / 3 / 32))
    progress(f"inserting {n} review items and {n} alerts with details of about {mb} MB")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.companies (id, name) VALUES (1, 'bench')")
        for statement in (_ITEMS, ROLLED_BACK_ALERTS):
            for start in range(0, n, 20):
                params = {"records": records, "chunks": chunks, "n": min(20, n - start)}
                conn.execute(statement, {**params, "start": start})
        row = conn.execute(
            "SELECT avg(octet_length(details::text)), min(id) FROM guard.review_items"
        ).fetchone()
        alert = conn.execute("SELECT min(id) FROM guard.alerts").fetchone()
    assert row is not None and alert is not None
    return {"details_mb": float(row[0]) / 2**20, "item": int(row[1]), "alert": int(alert[0])}


def run(n: int, mb: float, progress: Any) -> dict[str, Any]:
    with bench_database("bench") as (cluster, _server):
        url = cluster.url("bench")
        with Migrator(url) as migrator:
            migrator.apply()
        loaded = load(url, n, mb, progress)
        commands = [
            ["review", "list", "--json"],
            ["review", "list", "--json", "--all"],
            ["review", "list", "--all"],
            ["alerts", "list", "--json", "--all"],
            ["alerts", "show", str(loaded["alert"]), "--json"],
            ["alerts", "show", str(loaded["alert"]), "--json", "--full"],
            ["review", "show", str(loaded["item"]), "--json"],
            ["review", "show", str(loaded["item"]), "--json", "--full"],
        ]
        runs = []
        for args in commands:
            if not _exists(url, args[:2]):
                progress(f"guard {' '.join(args[:2])}: no such command here, skipped")
                continue
            if "--full" in args and not _exists(url, [*args[:2], "--full"]):
                continue
            progress("guard " + " ".join(args))
            runs.append(asdict(run_guard(url, args)))
        return {"cores": os.cpu_count(), "items": n, **loaded, "runs": runs}


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['items']} review items and {result['items']} alerts, details"
        f" {result['details_mb']:.2f} MB each ({result['cores']} cores)"
    )
    print(
        f"{'command':52} {'peak RSS MB':>11} {'output MB':>10} {'seconds':>8} {'exit':>5}  target"
    )
    for r in result["runs"]:
        whole = "--full" in r["command"]  # one value printed whole, on request: not a list
        ok = r["peak_rss_mb"] <= TARGET_PEAK_RSS_MB and (
            whole or r["output_mb"] <= TARGET_OUTPUT_MB
        )
        print(
            f"{r['command']:52} {r['peak_rss_mb']:11.1f} {r['output_mb']:10.2f}"
            f" {r['seconds']:8.1f} {r['exit_code']:5d}  {'PASS' if ok else 'FAIL'}"
        )
    print(
        f"targets: peak RSS <= {TARGET_PEAK_RSS_MB:g} MB; output <= {TARGET_OUTPUT_MB:g} MB"
        " (but for --full, which prints one value whole)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300, help="review items and alerts")
    parser.add_argument("--mb", type=float, default=2.0, help="size of each one's details")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.items, args.mb, progress)
    print_report(args.json, result, lambda: print_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
