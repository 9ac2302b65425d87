"""Cost at volume: every recurring job at 1M, 3M and 10M calls, and how it grows (``--json``).

    python -m bench.scale [--sizes 1000000,3000000,10000000] [--workdir DIR] [--keep]
                          [--online-scale S] [--json PATH]

Per size, one throwaway cluster under --workdir (default /tmp; 10M calls take about 15 GB) and a
database that Booking Guard has watched for a while, at a fixed 33 000 calls a day, so that the
size decides how long the history is (1M calls: about 30 days, 10M: about 300):
- the calls and their appointments (about half booked) as bench/detect.py builds them, the
  newest 7 days of calls (at most half of them) with the incident's bad-row rates: problems not
  dealt with yet; the older calls are consistent, and what their problems were left behind:
  resolved alerts on half of the calls within the alert retention (bench/detect_burst.py), a
  validation per call within the validation retention, a correction per 10 calls, a review item
  per 20 (open or claimed only for the last 7 days), breaker events and job runs
  (bench/exporter.py);
- the open alerts of those 7 days (detection has been running), every alert delivered;
- right before measuring, the calls of the time the load took, at the same rate: the detection
  window holds an hour of calls however long the load was.
Loaded with fsync off, VACUUM ANALYZE, then restarted durable (fsync on) with autovacuum on and a
5 s naptime, as in production.

Measured per size, while an application writer runs (bench/online.py's Writer: about 100 writes
a second, each tick a new or recent call and an update of an old one) as a login of the
application role, under row-level security; for every step its worst and p99 write latency and
the longest transaction any other session held:
- detection (guard.detect(), the recent window) while the application calls guard.check_call in
  a loop (bench/detect_burst.py's client, its p99): a first pass; then, with autovacuum off, a
  burst of 77 000 calls in the last hour (about 20 000 offend; half the calls of a smaller
  trial size); the pass that meets the burst;
  the pass right after it, its statistics from before the burst (no autoanalyze since);
- autovacuum on again; `guard check --all`;
- one metrics scrape by a serving exporter after its warm-up (bench/exporter.py: the warm-up's
  time and a cold collector's scrape beside it), and `guard metrics --once`'s peak RSS;
- the daily report of yesterday (guard.daily_report); one reconcile pass (guard.reconcile());
  one run of the sweep job (guard.sweep_checks(): the checks marked sweep over whole tables);
- `guard review list`; `guard watch --once --channel stdout`, delivering the new alerts (peak
  RSS). The guard commands run as child processes (bench/dispatch.py's run_guard).
Then, unless --online-scale is 0, bench/online.py's run at that scale (1: 2 million calls):
`guard db apply` and `guard db validate` on a legacy database under a live writer.

Prints one table per size (step, seconds, worst and p99 write ms, target, met), then the growth
from the smallest size to the largest. The targets are reported, never asserted: a detection
pass <= 2 s with check_call p99 <= 20 ms; `guard check --all` <= 60 s with no transaction over
10 s; one scrape <= 250 ms with every series (a target set for 1M calls a day and 100 000 open
alerts, the volume bench/exporter.py builds); `guard watch` <= 200 MB; the worst
application write <= 150 ms while any job runs; windowed work (detection, scrape, the report of
one day) growing < 1.5x from the smallest size to the largest.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import detect, detect_burst, dispatch, exporter, online
from bench._cluster import bench_cluster, restart_durable
from guard.demo.sample_data import PROBLEM_RATES

SIZES = (1_000_000, 3_000_000, 10_000_000)
CALLS_PER_DAY = 33_000
# Days of calls whose problems nobody has dealt with yet: they carry the open alerts and the
# open review items. Older calls were fixed; their alerts are resolved.
OPEN_DAYS = 7
BURST_CALLS = 77_000
BURST_SECONDS = 3500  # within the detection window of an hour
DATABASE = "bench_scale"
APP_LOGIN = "bench_app"
SETTINGS = {"autovacuum_naptime": "5s"}
PASS_CAP_S = 120.0
SCRAPE_TIMEOUT_MS = 2000

# A call without a direction or with half a customer link is refused by the constraints the
# migrations added: what is written after them offends only in the other ways.
WRITABLE_PROBLEMS = {
    name: rate
    for name, rate in PROBLEM_RATES.items()
    if name not in ("missing_direction", "incomplete_customer_link")
}
# The burst: a release that breaks booking, about 20 000 alerts from 77 000 calls.
BURST_RATES = {name: rate * 1.4 for name, rate in WRITABLE_PROBLEMS.items()}

TARGET_PASS_S = 2.0
TARGET_CHECK_CALL_P99_MS = 20.0
TARGET_CHECK_ALL_S = 60.0
TARGET_LONGEST_TRANSACTION_S = 10.0
TARGET_SCRAPE_MS = 250.0
TARGET_WATCH_MB = 200.0
TARGET_WORST_WRITE_MS = 150.0
TARGET_GROWTH = 1.5
# Steps whose work is a window of time, not the history: their cost should not follow the size.
WINDOWED = (
    "detection: first pass",
    "detection: the pass that meets the burst",
    "detection: right after, stale statistics",
    "metrics scrape (serving)",
    "daily report (one day)",
)

Progress = Callable[[str], None]


def _bytes_under(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a WAL segment recycled meanwhile
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


def write_calls(url: str, calls: int, seconds: float, rates: Mapping[str, float]) -> None:
    """`calls` calls spread over the last `seconds`, problems at `rates`, with their
    appointments, as bench/detect.py writes them (triggers bypassed); ids from the sequence,
    so the application's own inserts meanwhile are not in the way."""
    statement = detect.fill(
        "SET LOCAL session_replication_role = replica;\n"
        + detect.DRAW_SQL.replace("%(problem)s", detect.problem_case(rates))
        + detect.ROWS_FROM_DRAW_SQL,
        id="nextval(pg_get_serial_sequence('public.calls', 'id'))",
        created_at=f"now() - (g - 1) * ({seconds:.3f} / {calls}) * interval '1 second'",
        calls=int(calls),
        bad_rows=int(calls),
    )
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(statement)


def build(url: str, calls: int, progress: Progress) -> dict[str, Any]:
    days = calls / CALLS_PER_DAY
    open_rows = min(OPEN_DAYS * CALLS_PER_DAY, calls // 2)
    started = time.monotonic()
    built = detect.build(url, calls, progress, days=days, bad_rows=open_rows, analyze=False)
    with psycopg.connect(url, autocommit=True) as conn:
        alert_days = int(_one(conn, "SELECT guard.setting('retention_alerts_days') #>> '{}'"))
        validation_days = int(
            _one(conn, "SELECT guard.setting('retention_validation_metrics_days') #>> '{}'")
        )
    retained = min(calls, alert_days * CALLS_PER_DAY)
    history = (retained - open_rows) // 2
    if history > 0:
        detect_burst.prepare(url, retained, open_rows, history, progress, analyze=False)
    progress("writing validations, corrections, review items, breaker events, job runs")
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            exporter.HISTORY_SQL.format(
                validation_since=f"now() - interval '{validation_days} days'",
                active_since=f"now() - interval '{OPEN_DAYS} days'",
            ).encode()
        )
    progress(f"detection over the last {OPEN_DAYS} days' calls (their alerts are open)")
    with psycopg.connect(url, autocommit=True) as conn:
        # A database watched for a while has statistics. Without them this setup pass once took
        # 15 minutes at 10M calls, longer than the throttle window, so every open alert was
        # superseded and the measured passes met a database unlike production's.
        conn.execute("ANALYZE")
        conn.execute(
            "SELECT * FROM guard.detect_between("
            " now() - make_interval(days => %s), now() - interval '1 second')",
            (OPEN_DAYS + 1,),
        ).fetchall()
        # And the latest pass since, as every 5 minutes: what has aged out of its window (a
        # booking failure older than failure_window_minutes) is resolved.
        conn.execute("SELECT * FROM guard.detect()").fetchall()
        # The dispatcher has kept up: everything so far was delivered.
        conn.execute(
            "INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at)"
            " SELECT 'alert', id, 'stdout', 'delivered', now() FROM guard.alerts"
            " WHERE delivered_at IS NULL"
        )
        conn.execute("UPDATE guard.alerts SET delivered_at = now() WHERE delivered_at IS NULL")
        progress("VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE")
        app_role = _one(conn, "SELECT guard.role('application')")
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                sql.Identifier(APP_LOGIN), sql.Identifier(app_role)
            )
        )
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM guard.alerts WHERE status = 'open'),"
            " (SELECT count(*) FROM guard.alerts),"
            " (SELECT count(*) FROM guard.review_items),"
            " (SELECT count(*) FROM guard.review_items WHERE status IN ('open', 'claimed')),"
            " (SELECT count(*) FROM guard.correction_audit),"
            " (SELECT count(*) FROM guard.validation_metrics),"
            " pg_database_size(current_database())"
        ).fetchone()
        assert counts is not None
    return {
        "calls": built["calls"],
        "appointments": built["appointments"],
        "days": round(days, 1),
        "open_alerts": counts[0],
        "alerts": counts[1],
        "review_items": counts[2],
        "active_review_items": counts[3],
        "corrections": counts[4],
        "validations": counts[5],
        "database_bytes": counts[6],
        "build_s": time.monotonic() - started,
    }


class TransactionSampler(threading.Thread):
    """Every 100 ms, how long each open transaction has been open (the application writer's and
    the samplers' aside, all autocommit statements)."""

    QUERY = """
    SELECT coalesce(nullif(application_name, ''), '?'),
           extract(EPOCH FROM clock_timestamp() - xact_start)::float8
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND xact_start IS NOT NULL
      AND pid <> pg_backend_pid() AND application_name NOT IN ('application', 'lock sampler')
    """

    def __init__(self, url: str, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.every_s = every_s
        self.seen: list[tuple[float, str, float]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(
            self.url, autocommit=True, application_name="transaction sampler"
        ) as conn:
            while not self.stop_event.is_set():
                at = time.monotonic()
                for name, age in conn.execute(self.QUERY).fetchall():
                    self.seen.append((at, name, age))
                time.sleep(self.every_s)

    def longest(self, start: float, end: float) -> tuple[str, float]:
        inside = [(age, name) for at, name, age in self.seen if start <= at <= end]
        age, name = max(inside, default=(0.0, "-"))
        return name, age


class Measurement:
    """The sessions that run through every step of one size: the application writer, who it
    waits for, and the longest transactions; one record per step."""

    def __init__(self, url: str, app_url: str, legacy_calls: int, progress: Progress) -> None:
        self.url, self.app_url, self.progress = url, app_url, progress
        self.writer = online.Writer(app_url, legacy_calls=legacy_calls)
        self.blocks = online.BlockSampler(url)
        self.transactions = TransactionSampler(url)
        self.steps: list[dict[str, Any]] = []

    def __enter__(self) -> Measurement:
        for thread in (self.writer, self.blocks, self.transactions):
            thread.start()
        time.sleep(2.0)  # the writer's connection and plans are warm
        return self

    def __exit__(self, *_: object) -> None:
        for thread in (self.writer, self.blocks, self.transactions):
            thread.stop_event.set()
        for thread in (self.writer, self.blocks, self.transactions):
            thread.join(timeout=10)

    def step(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        self.progress(name)
        started = time.monotonic()
        figures = work()
        ended = time.monotonic()
        longest_by, longest_s = self.transactions.longest(started, ended)
        record = {
            "step": name,
            "seconds": figures.pop("seconds", ended - started),
            **online.latency_figures(self.writer.window(started, ended)),
            "failed_writes": self.writer.failures(started, ended),
            "writer_blocked_by": self.blocks.top(started, ended),
            "longest_transaction_s": longest_s,
            "longest_transaction_by": longest_by,
            **figures,
        }
        self.steps.append(record)
        return record


def _autovacuum(url: str, on: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET autovacuum = {'on' if on else 'off'}".encode())
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(1.0)  # the launcher reads the file when the postmaster signals it


def _guard(url: str, *args: str) -> dict[str, Any]:
    run = dispatch.run_guard(["--database-url", url, *args])
    return {
        "seconds": run.seconds,
        "exit_code": run.exit_code,
        "peak_rss_mb": run.peak_rss_mb,
        "last_stderr": (run.stderr.strip().splitlines() or [""])[-1][:200],
    }


def _window_ids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id FROM public.calls WHERE created_at >= now() - make_interval(mins =>"
            " (guard.setting('detection_window_minutes') #>> '{}')::integer)"
        ).fetchall()
    return [row[0] for row in rows] or [1]


def _detection(url: str, app_url: str, label: str) -> dict[str, Any]:
    # no progress of its own: Measurement.step has said which pass this is
    figures = detect_burst.timed_pass(
        url, _window_ids(url), PASS_CAP_S, label, lambda _: None, client_url=app_url
    )
    return {
        "seconds": figures["seconds"],
        "error": figures["error"],
        "opened": figures["opened"],
        "resolved": figures["resolved"],
        "check_calls": figures["check_calls"],
        "check_call_errors": figures["check_call_errors"],
        "check_call_p99_ms": figures["p99_ms"],
    }


def _analysed_since(url: str, since: datetime) -> dict[str, Any]:
    """Whether calls and alerts were analysed (by hand or autovacuum) since `since`."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, coalesce(greatest(last_analyze, last_autoanalyze) >= %s, false)"
            " FROM pg_stat_user_tables"
            " WHERE relid IN ('public.calls'::regclass, 'guard.alerts'::regclass)",
            (since,),
        ).fetchall()
    return {f"{name}_analysed_since_burst": analysed for name, analysed in rows}


def _sql_step(url: str, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True, application_name="bench scale") as conn:
        rows = conn.execute(query.encode(), params).fetchall()
    return {"rows": [list(row) for row in rows]}


def _idle(seconds: float) -> dict[str, Any]:
    time.sleep(seconds)
    return {}


def burst_calls(calls: int) -> int:
    """BURST_CALLS, or half the calls of a size too small for it (a trial run stays small)."""
    return min(BURST_CALLS, calls // 2)


def _burst(url: str, calls: int) -> dict[str, Any]:
    write_calls(url, calls, BURST_SECONDS, BURST_RATES)
    return {"burst_calls": calls}


def _stale_detection(url: str, app_url: str, label: str, burst_at: datetime) -> dict[str, Any]:
    """A detection pass, and whether calls and alerts had been analysed since the burst."""
    analysed = _analysed_since(url, burst_at)
    return {**analysed, **_detection(url, app_url, label)}


def measure(url: str, app_url: str, legacy_calls: int, progress: Progress) -> list[dict[str, Any]]:
    with Measurement(url, app_url, legacy_calls, progress) as run:
        run.step("no job running (baseline)", lambda: _idle(5.0))
        with psycopg.connect(url, autocommit=True) as conn:
            # bench/detect.py gives the newest call id 1 and the load's now() as created_at
            gap_s = float(
                _one(
                    conn,
                    "SELECT extract(EPOCH FROM now() - created_at) FROM public.calls WHERE id = 1",
                )
            )
        gap_calls = max(1, int(gap_s * CALLS_PER_DAY / 86400))
        progress(f"writing the {gap_calls:,} calls of the {gap_s:.0f} s since the load")
        write_calls(url, gap_calls, gap_s, WRITABLE_PROBLEMS)

        run.step("detection: first pass", lambda: _detection(url, app_url, "first pass"))
        _autovacuum(url, on=False)
        with psycopg.connect(url, autocommit=True) as conn:
            burst_at = _one(conn, "SELECT now()")
        burst = burst_calls(legacy_calls)
        run.step("burst: calls written", lambda: _burst(url, burst))
        for name in WINDOWED[1:3]:
            run.step(name, functools.partial(_stale_detection, url, app_url, name, burst_at))
        _autovacuum(url, on=True)
        run.step("guard check --all", lambda: _guard(url, "check", "--all"))
        run.step("metrics scrape (serving)", lambda: _scrape(url))
        run.step("guard metrics --once", lambda: _guard(url, "metrics", "--once"))
        run.step(
            "daily report (one day)",
            lambda: _sql_step(
                url,
                "SELECT count(*) FROM guard.daily_report((now() AT TIME ZONE 'UTC')::date - 1)",
            ),
        )
        run.step("reconcile (one pass)", lambda: _sql_step(url, "SELECT * FROM guard.reconcile()"))
        run.step("sweep (one run)", lambda: _sql_step(url, "SELECT * FROM guard.sweep_checks()"))
        run.step("guard review list", lambda: _guard(url, "review", "list"))
        run.step(
            "guard watch --once",
            lambda: _guard(url, "watch", "--once", "--channel", "stdout", "--stdout-rate", "0"),
        )
    for step in run.steps:
        judge(step)
    return run.steps


def _scrape(url: str) -> dict[str, Any]:
    """A serving exporter's first scrape after its warm-up (the step's seconds), and what a
    cold collector (guard metrics --once) pays reading every series itself."""
    scraped = exporter.scrape(url, SCRAPE_TIMEOUT_MS)
    return {
        "seconds": scraped["served_ms"] / 1000,
        "warm_up_ms": scraped["warm_up_ms"],
        "cold_ms": scraped["cold_ms"],
        "warm_ms": scraped["warm_ms"],
        "guard_up": scraped["guard_up"],
        "missing_series": sorted(set(scraped["missing_served"]) | set(scraped["missing_cold"])),
        "stale_series": scraped["stale"],
    }


def judge(step: dict[str, Any]) -> None:
    """The step's own target and the writer's, and whether they were met: in place."""
    name = step["step"]
    goals: list[tuple[str, bool]] = []
    if name.startswith("detection:"):
        p99 = step.get("check_call_p99_ms")
        goals.append(
            (f"<= {TARGET_PASS_S:g} s", step["seconds"] <= TARGET_PASS_S and not step["error"])
        )
        goals.append(
            (
                f"check_call p99 <= {TARGET_CHECK_CALL_P99_MS:g} ms",
                p99 is not None
                and p99 <= TARGET_CHECK_CALL_P99_MS
                and not step["check_call_errors"],
            )
        )
    elif name == "guard check --all":
        goals.append(
            (
                f"<= {TARGET_CHECK_ALL_S:g} s",
                step["seconds"] <= TARGET_CHECK_ALL_S and step["exit_code"] in (0, 1),
            )
        )
        goals.append(
            (
                f"no transaction > {TARGET_LONGEST_TRANSACTION_S:g} s",
                step["longest_transaction_s"] <= TARGET_LONGEST_TRANSACTION_S,
            )
        )
    elif name == "metrics scrape (serving)":
        goals.append(
            (
                f"<= {TARGET_SCRAPE_MS:g} ms, every series",
                step["seconds"] * 1000 <= TARGET_SCRAPE_MS
                and step["guard_up"]
                and not step["missing_series"],
            )
        )
    elif name in ("guard metrics --once", "guard review list"):
        goals.append(("exits 0", step["exit_code"] == 0))
    elif name == "guard watch --once":
        goals.append(
            (
                f"<= {TARGET_WATCH_MB:g} MB",
                step["peak_rss_mb"] <= TARGET_WATCH_MB and step["exit_code"] == 0,
            )
        )
    if not name.startswith(("no job", "burst")):
        goals.append(
            (
                f"worst write <= {TARGET_WORST_WRITE_MS:g} ms",
                step["worst_ms"] <= TARGET_WORST_WRITE_MS,
            )
        )
    step["target"] = "; ".join(goal for goal, _ in goals) or "-"
    step["met"] = None if not goals else all(ok for _, ok in goals)


def _also(step: dict[str, Any]) -> str:
    """The step's own figure beside the writer's."""
    if "check_call_p99_ms" in step:
        p99 = step["check_call_p99_ms"]
        shown = "-" if p99 is None else f"{p99:.1f}"
        stale = (
            ", stale stats"
            if step.get("calls_analysed_since_burst") is False
            and step.get("alerts_analysed_since_burst") is False
            else ""
        )
        return f"check_call p99 {shown} ms, opened {step['opened']:,}{stale}"
    if "missing_series" in step:
        return (
            f"warm-up {step['warm_up_ms']:.0f} ms, cold {step['cold_ms']:.0f} ms,"
            f" missing: {', '.join(step['missing_series']) or 'none'}"
        )
    if "peak_rss_mb" in step:
        return f"peak {step['peak_rss_mb']:.0f} MB, exit {step['exit_code']}"
    if "rows" in step:
        return f"{sum(row[-1] for row in step['rows']):,} rows"
    if "burst_calls" in step:
        return f"{step['burst_calls']:,} calls"
    return ""


def print_size(size: dict[str, Any]) -> None:
    built = size["built"]
    print(
        f"{built['calls']:,} calls over {built['days']:g} days ({CALLS_PER_DAY:,} a day),"
        f" {built['appointments']:,} appointments; {built['alerts']:,} alerts"
        f" ({built['open_alerts']:,} open), {built['review_items']:,} review items"
        f" ({built['active_review_items']:,} open or claimed), {built['corrections']:,}"
        f" corrections, {built['validations']:,} validations"
    )
    print(
        f"  built in {built['build_s']:.0f} s, database {built['database_bytes'] / 2**30:.2f} GiB,"
        f" cluster {size['cluster_bytes'] / 2**30:.2f} GiB; measured in"
        f" {size['measure_s']:.0f} s"
    )
    print(
        f"  {'step':<42}{'s':>9}{'worst ms':>10}{'p99 ms':>9}{'longest tx s':>14}  "
        f"{'also':<52}{'met':<5}target"
    )
    for step in size["steps"]:
        met = {True: "yes", False: "NO", None: "-"}[step["met"]]
        print(
            f"  {step['step']:<42}{step['seconds']:>9.3f}{step['worst_ms']:>10.1f}"
            f"{step['p99_ms']:>9.1f}{step['longest_transaction_s']:>14.2f}  "
            f"{_also(step):<52}{met:<5}{step['target']}"
        )
        for message, count in step["failed_writes"].items():
            print(f"    {count} application writes failed: {message}")
    print()


def growth(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step, its cost at every size and the ratio largest / smallest (peak memory too)."""
    rows = []
    for first in sizes[0]["steps"]:
        name = first["step"]
        costs = [next(s for s in size["steps"] if s["step"] == name) for size in sizes]
        figures = [("seconds", name)]
        if "peak_rss_mb" in first:
            figures.append(("peak_rss_mb", f"{name}: peak MB"))
        for key, label in figures:
            values = [float(step[key]) for step in costs]
            ratio = values[-1] / values[0] if values[0] > 0 else None
            windowed = key == "seconds" and name in WINDOWED
            rows.append(
                {
                    "what": label,
                    "values": values,
                    "ratio": ratio,
                    "target": f"< {TARGET_GROWTH:g}x" if windowed else "-",
                    "met": (ratio is not None and ratio < TARGET_GROWTH) if windowed else None,
                }
            )
    return rows


def print_growth(sizes: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    labels = [f"{size['built']['calls'] / 1e6:g}M" for size in sizes]
    print(f"Growth {labels[0]} -> {labels[-1]} calls")
    print(
        f"  {'':<50}"
        + "".join(f"{label:>11}" for label in labels)
        + f"{'ratio':>8}  {'met':<5}target"
    )
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        print(
            f"  {row['what']:<50}"
            + "".join(f"{value:>11.3f}" for value in row["values"])
            + f"{ratio:>8}  {met:<5}{row['target']}"
        )
    print()


def run_size(calls: int, workdir: Path | None, keep: bool, progress: Progress) -> dict[str, Any]:
    progress(f"== {calls:,} calls: starting a throwaway cluster")
    with bench_cluster(SETTINGS, parent=workdir, keep=keep) as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        url = cluster.url(DATABASE)
        built = build(url, calls, progress)
        progress("restarting durable (fsync on), autovacuum on")
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET autovacuum = on")
        restart_durable(cluster)
        app_url = psycopg.conninfo.make_conninfo(url, user=APP_LOGIN)
        started = time.monotonic()
        steps = measure(url, app_url, calls, progress)
        measure_s = time.monotonic() - started
        cluster_bytes = _bytes_under(cluster.state_dir)
        if keep:
            progress(f"kept: {cluster.state_dir} (stopped)")
    return {
        "built": built,
        "cluster_bytes": cluster_bytes,
        "measure_s": measure_s,
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="calls per size, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the clusters are made (default /tmp; 10M: ~15 GB)"
    )
    parser.add_argument("--keep", action="store_true", help="keep each cluster (stopped)")
    parser.add_argument(
        "--online-scale",
        type=float,
        default=1.0,
        help="bench/online.py's apply + validate at this scale (1: 2M calls; 0: skip)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    except ValueError:
        parser.error("--sizes takes whole numbers of calls, comma-separated")
    if any(size < 1000 for size in sizes):
        parser.error("every size is at least 1000 calls")
    if args.workdir is not None and not args.workdir.is_dir():
        parser.error(f"--workdir {args.workdir} is not a directory")

    started = time.monotonic()

    def progress(message: str) -> None:
        elapsed = time.monotonic() - started
        print(f"[bench {elapsed:7.0f} s] {message}", file=sys.stderr, flush=True)

    results = [run_size(size, args.workdir, args.keep, progress) for size in sizes]
    online_result = None
    if args.online_scale > 0:
        progress(f"== bench/online.py at scale {args.online_scale:g}: guard db apply, validate")
        online_result = online.run(args.online_scale, 25.0, 20.0, progress, args.workdir)
        online_result["target"] = online.target(online_result)
    rows = growth(results)

    for size in results:
        print_size(size)
    if len(results) > 1:
        print_growth(results, rows)
    if online_result is not None:
        online.print_table(online_result)
        print()
    print(f"whole run: {time.monotonic() - started:.0f} s")
    if args.json:
        document = {
            "header": {
                "cores": os.cpu_count(),
                "calls_per_day": CALLS_PER_DAY,
                "burst_calls": BURST_CALLS,
                "sizes": sizes,
                "seconds": time.monotonic() - started,
            },
            "sizes": results,
            "growth": rows,
            "online": online_result,
        }
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
