"""Benchmark of one `guard metrics` scrape at production volume: one table per size (``--json``).

    python -m bench.exporter [--calls N] [--alerts M] [--statement-timeout-ms MS] [--json]

One throwaway cluster under /tmp with autovacuum on, as in production.
Every migration applied, then, bulk-loaded in one transaction as bench/detect.py does (triggers
bypassed: the rows are clean, nothing for them to derive), production volume:
N calls (default 1 000 000) over the last 24 h for 10 companies; M open alerts (default 100 000)
on calls of that day, spread over the enabled checks, plus as many resolved ones; the history
the other series read: one validation per call, a correction per 10 calls, a review item per 20
calls (most closed), 50 000 breaker events over 20 circuits, 10 000 job runs.

Measured, twice: right after the load (no statistics yet: what the planner sees before
autovacuum has been round) and once autovacuum has vacuumed and analysed every table (its own
thresholds; only autovacuum_naptime is shortened, to 5 s, so the wait is short). Nothing is
ANALYZEd by hand. Each time:
- a cold scrape (a new collector: every series computed, the cached ones included), then a
  warm one right after (cached series served from the cache where the collector caches), then
  a due one once the cache interval (2 s here) has passed: the scrape that reads the cached
  series again (in the background, since the refresher, and then the time the refresh took);
- per statement, from one more cold scrape by a role whose sessions auto_explain (JSON, actual
  rows, no per-node timing): its duration and the tables it read in full (Seq Scan) with their rows.
Target: one scrape at 1 000 000 calls a day and 100 000 open alerts <= 250 ms, every
series present.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_database, print_report, progress
from guard.ops.metrics import SERIES, GuardCollector, registry_for
from guard.schema.migrate import Migrator

CALLS = 1_000_000
ALERTS = 100_000
COMPANIES = 10
DATABASE = "bench_exporter"
TARGET_MS = 250.0
# Every family the exporter serves from a database with jobs and deliveries (docs/metrics.md).
CACHED_SERIES = {one.name for one in SERIES if one.cached}
EXPECTED_FAMILIES = (
    "guard_alerts_open",
    "guard_review_items",
    "guard_review_oldest_open_age_seconds",
    "guard_breaker_state",
    "guard_breaker_transitions_total",
    "guard_validation_latency_window_seconds",
    "guard_validation_latency_percentile_seconds",
    "guard_consistency_ratio",
    "guard_corrections_total",
    "guard_job_last_run_status",
    "guard_alert_deliveries",
)
SETTINGS = {"autovacuum": "on", "autovacuum_naptime": "5s"}
# The exporter connects as its own role, whose sessions log every statement's plan with its
# actual rows and time (auto_explain, JSON): per-statement timings and the tables read in full.
EXPORTER_ROLE = "bench_exporter"
EXPORTER_ROLE_SQL = f"""
CREATE ROLE {EXPORTER_ROLE} LOGIN SUPERUSER;
ALTER ROLE {EXPORTER_ROLE} SET session_preload_libraries = 'auto_explain';
ALTER ROLE {EXPORTER_ROLE} SET auto_explain.log_min_duration = 0;
ALTER ROLE {EXPORTER_ROLE} SET auto_explain.log_analyze = on;
ALTER ROLE {EXPORTER_ROLE} SET auto_explain.log_timing = off;
ALTER ROLE {EXPORTER_ROLE} SET auto_explain.log_format = 'json';
"""

LOAD_SQL = """
SET LOCAL session_replication_role = replica;

INSERT INTO public.companies (id, name)
SELECT g, 'Company ' || g FROM generate_series(1, {companies}) AS g;

INSERT INTO public.calls (id, company_id, retell_call_id, status, direction,
    customer_link_status, session_outcome, created_at, updated_at)
SELECT g, 1 + g % {companies}, 'call_' || g, 'ended', 'inbound', 'anonymous', 'information_only',
    now() - (86000.0 * (g - 1) / {calls}) * interval '1 second',
    now() - (86000.0 * (g - 1) / {calls}) * interval '1 second'
FROM generate_series(1, {calls}) AS g;
SELECT setval(pg_get_serial_sequence('public.calls', 'id'), {calls});

CREATE TEMP TABLE bench_checks ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, severity
FROM guard.checks WHERE enabled;

-- open alerts on every (calls / alerts)-th call, resolved ones on the calls in between
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity,
    message, status, resolved_at, resolution, first_seen_at, last_seen_at)
SELECT k.id || ':call:' || c.id, k.id, 1 + c.id % {companies}, 'call', c.id, k.severity, 'bench',
    s.status, CASE WHEN s.status = 'resolved' THEN now() END,
    CASE WHEN s.status = 'resolved' THEN 'fixed' END, now(), now()
FROM (
    SELECT g * ({calls} / {alerts}) AS base, g FROM generate_series(1, {alerts}) AS g
) AS a
CROSS JOIN LATERAL (VALUES ('open', a.base), ('resolved', a.base - 1)) AS s (status, call_id)
JOIN public.calls AS c ON c.id = s.call_id
JOIN bench_checks AS k ON k.n = a.g % (SELECT count(*) FROM bench_checks);

INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at)
SELECT 'alert', a.id, 'webhook', 'delivered', now() FROM guard.alerts AS a WHERE a.id % 10 = 0;
"""

# The history the other series read, written as the application and Booking Guard leave it
# (run with session_replication_role = replica). Per call since {validation_since} (a SQL
# expression) a validation; per 10 calls a correction; per 20 calls a review item, open or
# claimed only when its call is not older than {active_since}; breaker events and job runs.
HISTORY_SQL = """
INSERT INTO guard.validation_metrics (company_id, call_id, ok, latency_ms, measured_at)
SELECT c.company_id, c.id, c.id % 50 <> 0, 0.2 + (c.id % 97) / 50.0, c.created_at
FROM public.calls AS c WHERE c.created_at >= {validation_since};

INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason,
    corrected_at)
SELECT (ARRAY['I1_call_direction', 'I2_customer_link', 'I3_appointment_flags'])[1 + c.id % 3],
    c.company_id, 'call', c.id, 'bench', c.created_at
FROM public.calls AS c WHERE c.id % 10 = 0;

INSERT INTO guard.review_items (company_id, call_id, reason, status, created_at, claimed_by,
    claimed_at, closed_at)
SELECT c.company_id, c.id, 'validation_failure', st.status, c.created_at,
    CASE WHEN st.status = 'claimed' THEN 'bench' END,
    CASE WHEN st.status = 'claimed' THEN now() END,
    CASE WHEN st.status IN ('resolved', 'dismissed') THEN now() END
FROM public.calls AS c
CROSS JOIN LATERAL (SELECT CASE WHEN c.id % 100 = 40 THEN 'dismissed'
    WHEN c.created_at < {active_since} THEN 'resolved' WHEN c.id % 100 = 0 THEN 'open'
    WHEN c.id % 100 = 20 THEN 'claimed' ELSE 'resolved' END AS status) AS st
WHERE c.id % 20 = 0;

INSERT INTO guard.breaker_state (key, state, generation, changed_at)
SELECT 'circuit_' || g, 'closed', 2500, now() FROM generate_series(1, 20) AS g;
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid,
    occurred_at)
SELECT 'circuit_' || (1 + g % 20), g / 20 + 1, 'closed', 'open', 'bench', 'h', 1,
    now() - g * interval '1 second'
FROM generate_series(0, 49999) AS g;

INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, duration_ms)
SELECT j.name, now() - g * interval '5 minutes', now() - g * interval '5 minutes', 'succeeded', 1
FROM guard.jobs AS j CROSS JOIN generate_series(1, 10000 / (SELECT count(*) FROM guard.jobs)) AS g;

"""

TABLES = (
    "calls",
    "alerts",
    "validation_metrics",
    "correction_audit",
    "review_items",
    "breaker_events",
    "job_runs",
    "deliveries",
)


def build(url: str, calls: int, alerts: int, progress: Any) -> dict[str, Any]:
    progress("applying migrations")
    with Migrator(url) as migrator:
        migrator.apply()
    progress(f"loading {calls:,} calls and {alerts:,} open alerts (and the history around them)")
    started = time.perf_counter()
    sql = LOAD_SQL.format(companies=COMPANIES, calls=int(calls), alerts=int(alerts))
    sql += HISTORY_SQL.format(validation_since="'-infinity'", active_since="'-infinity'")
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(sql.encode())
    load_s = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM public.calls"
            "        WHERE created_at > now() - interval '24 hours'),"
            " (SELECT count(*) FROM guard.alerts WHERE status = 'open')"
        ).fetchone()
    assert row is not None
    return {"load_s": load_s, "calls_24h": row[0], "open_alerts": row[1]}


def wait_for_autovacuum(url: str, progress: Any, timeout_s: float = 300) -> dict[str, Any]:
    """Until autovacuum has vacuumed and analysed the tables of the issue (calls, alerts) at its
    own thresholds; says which loaded tables it reached (the small ones stay below them)."""
    progress("waiting for autovacuum to vacuum and analyse public.calls and guard.alerts")
    started = time.monotonic()
    query = (
        "SELECT relname, last_autovacuum IS NOT NULL AND last_autoanalyze IS NOT NULL"
        " FROM pg_stat_user_tables WHERE relname = ANY(%s) ORDER BY relname"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            reached: dict[str, bool] = dict(conn.execute(query, (list(TABLES),)).fetchall())
            waited = time.monotonic() - started
            if (reached.get("calls") and reached.get("alerts")) or waited > timeout_s:
                return {
                    "waited_s": waited,
                    "reached": sorted(t for t, done in reached.items() if done),
                    "not_reached": sorted(t for t, done in reached.items() if not done),
                }
            time.sleep(2)


CACHE_INTERVAL_S = 2.0


def _collector(url: str, timeout_ms: int) -> GuardCollector:
    # Only what every version of the collector takes, so the same script measures before and after.
    return GuardCollector(url, statement_timeout_ms=timeout_ms, cache_interval_s=CACHE_INTERVAL_S)


def _families(text: str) -> set[str]:
    found = set(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    # prometheus_client prints a counter's TYPE line with or without _total, by version
    return {
        f"{name}_total" if kind == "counter" and not name.endswith("_total") else name
        for name, kind in found
    }


def _full_scans(plan: dict[str, Any]) -> list[tuple[str, int]]:
    """The tables a plan reads in full (Seq Scan), with the rows it got from each."""
    found = []
    if plan.get("Node Type") == "Seq Scan":
        rows = int(plan.get("Actual Rows", 0)) + int(plan.get("Rows Removed by Filter", 0))
        found.append((plan["Relation Name"], rows))
    for child in plan.get("Plans", []):
        found += _full_scans(child)
    return found


def _explained(log_file: Path, offset: int) -> list[dict[str, Any]]:
    """The statements auto_explain logged since offset: duration, query, full scans."""
    text = log_file.read_text(errors="replace")[offset:]
    decoder = json.JSONDecoder()
    statements = []
    for match in re.finditer(r"duration: ([0-9.]+) ms  plan:\s*", text):
        document, _ = decoder.raw_decode(text, match.end())
        query = " ".join(str(document.get("Query Text", "")).split())
        if re.match(r"(?i)(SET|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", query):
            continue
        statements.append(
            {
                "ms": float(match.group(1)),
                "query": query,
                "full_scans": _full_scans(document.get("Plan", {})),
            }
        )
    return statements


def scrape(url: str, timeout_ms: int) -> dict[str, Any]:
    """A serving exporter's first scrape once its start-up reading of the cached series (the
    warm-up, as `guard metrics --port` does) is done, and that reading's time; a cold scrape by
    a new collector without one (every series computed, as `guard metrics --once` does), then a
    warm one (the cached series from the cache) and a due one: their times, guard_up, the
    missing and the stale series."""
    serving = _collector(url, timeout_ms)
    started = time.perf_counter()
    serving.start_warm_up()
    assert serving._refresher is not None
    serving._refresher.join()
    warm_up_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    served = generate_latest(registry_for(serving)).decode()
    served_ms = (time.perf_counter() - started) * 1000
    serving.close()

    collector = _collector(url, timeout_ms)
    registry = registry_for(collector)
    started = time.perf_counter()
    cold = generate_latest(registry).decode()
    cold_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    warm = generate_latest(registry).decode()
    warm_ms = (time.perf_counter() - started) * 1000
    time.sleep(CACHE_INTERVAL_S)
    started = time.perf_counter()
    due = generate_latest(registry).decode()
    due_ms = (time.perf_counter() - started) * 1000
    refresher = getattr(collector, "_refresher", None)  # absent before the background refresh
    if refresher is not None:
        refresher.join()
    refreshed_ms = 1000 * sum(
        r.seconds for name, r in collector.readings.items() if name in CACHED_SERIES
    )
    collector.close()
    return {
        "warm_up_ms": warm_up_ms,
        "served_ms": served_ms,
        "missing_served": sorted(set(EXPECTED_FAMILIES) - _families(served)),
        "cold_ms": cold_ms,
        "warm_ms": warm_ms,
        "due_ms": due_ms,
        "refresh_ms": refreshed_ms,
        "missing_due": sorted(set(EXPECTED_FAMILIES) - _families(due)),
        "guard_up": "\nguard_up 1.0" in "\n" + cold,
        "missing_cold": sorted(set(EXPECTED_FAMILIES) - _families(cold)),
        "missing_warm": sorted(set(EXPECTED_FAMILIES) - _families(warm)),
        "stale": sorted(re.findall(r'^guard_series_stale\{series="(\w+)"\} 1\.0$', cold, re.M)),
    }


def measure(url: str, explain_url: str, log_file: Path, timeout_ms: int) -> dict[str, Any]:
    scraped = scrape(url, timeout_ms)
    # Once more, explained: a new collector, so every series is computed again.
    offset = len(log_file.read_text(errors="replace"))
    explained = _collector(explain_url, timeout_ms)
    generate_latest(registry_for(explained))
    explained.close()
    time.sleep(0.5)  # the server writes its log asynchronously to us
    return {**scraped, "statements": _explained(log_file, offset)}


def print_table(header: dict[str, Any], built: dict[str, Any], runs: dict[str, Any]) -> None:
    print(
        f"One scrape of guard metrics: {built['calls_24h']:,} calls in the last 24 h,"
        f" {built['open_alerts']:,} open alerts"
    )
    print(
        f"  {header['server']}; {header['cores']} cores; statement_timeout"
        f" {header['timeout_ms']} ms; load {built['load_s']:.1f} s"
    )
    autovacuum = built["autovacuum"]
    print(
        f"  autovacuum (after {autovacuum['waited_s']:.0f} s) had vacuumed and analysed:"
        f" {', '.join(autovacuum['reached']) or 'nothing'};"
        f" not yet: {', '.join(autovacuum['not_reached']) or 'nothing'}"
    )
    for phase, result in runs.items():
        print()
        print(f"[{phase}]")
        print(
            f"  serving exporter: warm-up {result['warm_up_ms']:9.1f} ms, then its first scrape"
            f" {result['served_ms']:9.1f} ms"
        )
        print(
            f"  cold scrape {result['cold_ms']:9.1f} ms   warm scrape {result['warm_ms']:9.1f} ms"
            f"   due scrape {result['due_ms']:9.1f} ms"
            f"   guard_up {'1' if result['guard_up'] else '0'}"
        )
        print(f"  the cached series' own queries, last read: {result['refresh_ms']:.1f} ms")
        print(f"  missing series (served): {', '.join(result['missing_served']) or 'none'}")
        print(f"  missing series (cold): {', '.join(result['missing_cold']) or 'none'}")
        print(f"  missing series (warm): {', '.join(result['missing_warm']) or 'none'}")
        print(f"  missing series (due): {', '.join(result['missing_due']) or 'none'}")
        print(f"  stale series (cold): {', '.join(result['stale']) or 'none'}")
        print(f"  {'ms':>9}  statement (an explained cold scrape), tables it read in full")
        for row in result["statements"]:
            print(f"  {row['ms']:9.2f}  {row['query'][:100]}")
            for table, rows in row["full_scans"]:
                print(f"  {'':9}    Seq Scan {table}: {rows:,} rows")
    print()
    for goal in targets(built, runs):
        print(f"  {goal['result']:<5} {goal['target']}: {goal['detail']}")


def targets(built: dict[str, Any], runs: dict[str, Any]) -> list[dict[str, Any]]:
    at_volume = built["calls_24h"] >= 1_000_000 and built["open_alerts"] >= 100_000
    goals = []
    for phase, result in runs.items():
        complete = result["guard_up"] and not any(
            result[f"missing_{which}"] for which in ("served", "cold", "warm", "due")
        )
        volume = "" if at_volume else " (below the target's volume)"
        present = "every series present" if complete else "series missing"
        # Judged apart: a serving exporter's first scrape (after its warm-up) and every later
        # one (warm, or due for the cached series) are what Prometheus sees; a cold collector
        # (`guard metrics --once`) computes every series itself.
        for which, worst, what in (
            ("served", result["served_ms"], "a serving exporter's first scrape"),
            ("later", max(result["warm_ms"], result["due_ms"]), "every scrape after the first"),
            ("cold", result["cold_ms"], "a cold collector's scrape (guard metrics --once)"),
        ):
            goals.append(
                {
                    "target": f"{phase}: {what} at 1M calls/day and 100k open alerts"
                    f" <= {TARGET_MS:.0f} ms, every series present",
                    "result": "PASS" if at_volume and complete and worst <= TARGET_MS else "FAIL",
                    "detail": {
                        "served": f"first {result['served_ms']:.1f} ms after a warm-up of"
                        f" {result['warm_up_ms']:.1f} ms",
                        "cold": f"cold {result['cold_ms']:.1f} ms",
                        "later": f"warm {result['warm_ms']:.1f} ms, due {result['due_ms']:.1f} ms",
                    }[which]
                    + f", {present}{volume}",
                }
            )
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS, help="calls in the last 24 h")
    parser.add_argument("--alerts", type=int, default=ALERTS, help="open alerts")
    parser.add_argument(
        "--statement-timeout-ms",
        type=int,
        default=2000,
        help="the exporter's statement_timeout (raise it to see what a query really costs)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.alerts > args.calls // 2:
        parser.error("--alerts must be at most half of --calls (one open, one resolved per call)")

    runs: dict[str, Any] = {}
    with bench_database(DATABASE, SETTINGS) as (cluster, server):
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(EXPORTER_ROLE_SQL)
        url = cluster.url(DATABASE)
        explain_url = url.replace("postgresql://postgres@", f"postgresql://{EXPORTER_ROLE}@")
        built = build(url, args.calls, args.alerts, progress)
        timeout = args.statement_timeout_ms
        progress("scraping before autovacuum")
        runs["before autovacuum"] = measure(url, explain_url, cluster.log_file, timeout)
        built["autovacuum"] = wait_for_autovacuum(url, progress)
        progress("scraping after autovacuum")
        runs["after autovacuum"] = measure(url, explain_url, cluster.log_file, timeout)

    header = {
        "server": server,
        "cores": os.cpu_count(),
        "timeout_ms": args.statement_timeout_ms,
        "collector": str(inspect.signature(GuardCollector)),
    }
    print_report(
        args.json,
        {"header": header, "data": built, "runs": runs, "targets": targets(built, runs)},
        lambda: print_table(header, built, runs),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
