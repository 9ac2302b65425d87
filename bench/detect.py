"""Benchmark of detection and reconciliation over 1 000 000 calls: one table (``--json``).

    python bench/detect.py [--calls N] [--repeat N] [--json]

One throwaway cluster under /tmp (PostgreSQL runs as the ``postgres`` OS user when we are root,
see guard/demo/embedded.py). The database plays an adopted legacy database: migrations up to
0004_guard_tables, then N calls (default 1 000 000) over 30 days for 10 companies, written as an
old application wrote them (triggers bypassed with session_replication_role = replica, so the
bad rows get in), with the incident's bad-row rates (guard.demo.sample_data.PROBLEM_RATES) and about
half of the calls booked with an appointment; then the remaining migrations (whose NOT VALID
constraints leave the old rows alone), ANALYZE.

Measured (median of --repeat runs unless said otherwise):
- each detection check's view over the detection window, as guard.detect() filters it
  (``SELECT count(*) FROM guard.check_<check> WHERE observed_at >= now() - window``);
- guard.detect(): the first pass (opens an alert for every offending row in the window) once,
  then steady passes (repeats bump the open alerts);
- guard.reconcile(): one pass (capped by reconcile_batch_limit), once.
Target: a full detection pass over 1 000 000 calls (one-hour window) in at most 50 ms.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_database, bench_parser, print_measured, progress
from guard.demo.sample_data import PROBLEM_RATES
from guard.queries import CALLS_INSERT_HEAD
from guard.schema.migrate import Migrator

CALLS = 1_000_000
COMPANIES = 10
DAYS = 30
LEGACY_UNTIL = "0004_guard_tables"
DATABASE = "bench_detect"
TARGET_MS = 50.0


def problem_case(rates: Mapping[str, float]) -> str:
    """SQL giving each call one problem of `rates` (or 'none') from its random draw r: the
    problems in order, as cumulative thresholds."""
    thresholds = list(zip(rates, itertools.accumulate(rates.values()), strict=True))
    return (
        "CASE "
        + " ".join(f"WHEN r < {upper:.8f} THEN '{name}'" for name, upper in thresholds)
        + " ELSE 'none' END"
    )


# Calls evenly over %(days)s days, newest first (the lowest ids).
_EVEN_CREATED_AT = "now() - (%(days)s * 86400.0 * (g - 1) / %(calls)s) * interval '1 second'"

# bench/detect_burst.py: the newest `recent` calls within the last hour, the rest over the days.
_BURST_CREATED_AT = (
    "CASE WHEN g <= %(recent)s"
    " THEN now() - (g - 1) * (3500.0 / %(recent)s) * interval '1 second'"
    " ELSE now() - interval '1 hour' - (%(days)s * 86400.0 - 3600)"
    " * (g - %(recent)s) / (%(calls)s - %(recent)s) * interval '1 second' END"
)

COMPANIES_SQL = f"""
INSERT INTO public.companies (id, name)
SELECT g, 'Company ' || g FROM generate_series(1, {COMPANIES}) AS g;

INSERT INTO public.customers (company_id, name)
SELECT 1 + g % {COMPANIES}, 'Customer ' || g FROM generate_series(1, 20000) AS g;
"""

# One row per call to write, g counting from the newest: its id (%(id)s, g or the sequence's next
# value), a problem drawn at the given rates for the newest %(bad_rows)s, none for the older ones.
DRAW_SQL = f"""
CREATE TEMP TABLE draw ON COMMIT DROP AS
SELECT
    %(id)s AS id,
    1 + g % {COMPANIES} AS company_id,
    %(created_at)s AS created_at,
    %(problem)s AS problem,
    random() AS shape
FROM (
    SELECT g, CASE WHEN g <= %(bad_rows)s THEN random() ELSE 1 END AS r
    FROM generate_series(1, %(calls)s) AS g
) AS d;
"""

# The calls and appointments of the draw, as a legacy application wrote them (run with
# session_replication_role = replica: Booking Guard's triggers do not see them).
ROWS_FROM_DRAW_SQL = (
    CALLS_INSERT_HEAD
    + """SELECT
    d.id,
    d.company_id,
    'call_' || d.id,
    '+49 30 ' || (1000000 + d.id % 8999999),
    '+49 30 5550000',
    'ended',
    CASE WHEN d.problem = 'missing_direction' THEN NULL ELSE 'inbound' END,
    CASE WHEN d.problem = 'incomplete_customer_link' THEN 1 + (d.id % 20000) END,
    CASE WHEN d.problem = 'incomplete_customer_link' THEN NULL ELSE 'anonymous' END,
    NULL,
    NULL,
    NULL,
    CASE
        WHEN d.problem IN ('phantom_booking', 'flag_mismatch', 'contradicting_flags',
                           'orphaned_appointment') THEN 'appointment_booked'
        WHEN d.problem = 'booking_failure' THEN 'creation_failed'
        WHEN d.problem = 'none' AND d.shape < 0.45 THEN 'appointment_booked'
        WHEN d.problem = 'none' AND d.shape < 0.50 THEN 'appointment_cancelled'
        ELSE 'information_only'
    END,
    d.problem IN ('phantom_booking', 'contradicting_flags')
    OR (d.problem = 'none' AND d.shape < 0.45),
    CASE
        WHEN d.problem = 'phantom_booking' OR (d.problem = 'none' AND d.shape < 0.45) THEN 'linked'
    END,
    CASE
        WHEN d.problem = 'phantom_booking' OR (d.problem = 'none' AND d.shape < 0.45)
            THEN d.created_at + interval '30 seconds'
    END,
    CASE
        WHEN d.problem IN ('phantom_booking', 'flag_mismatch', 'contradicting_flags',
                           'orphaned_appointment') OR (d.problem = 'none' AND d.shape < 0.50)
            THEN 'bk_' || d.id
    END,
    d.problem = 'phantom_booking' OR (d.problem = 'none' AND d.shape < 0.45),
    d.problem IN ('contradicting_flags', 'booking_failure'),
    CASE WHEN d.problem IN ('contradicting_flags', 'booking_failure')
        THEN 'calendar_error: slot no longer available' END,
    d.problem IN ('contradicting_flags', 'booking_failure'),
    d.created_at,
    d.created_at
FROM draw AS d;

INSERT INTO public.appointments (
    company_id, call_id, calcom_v2_booking_id, source, status, starts_at, ends_at, created_at,
    updated_at
)
SELECT
    d.company_id,
    CASE WHEN d.problem = 'orphaned_appointment' THEN NULL ELSE d.id END,
    'bk_' || d.id,
    'retell_webhook',
    CASE WHEN d.problem = 'none' AND d.shape >= 0.45 THEN 'cancelled' ELSE 'scheduled' END,
    d.created_at + interval '3 days',
    d.created_at + interval '3 days 30 minutes',
    d.created_at + interval '20 seconds',
    d.created_at + interval '20 seconds'
FROM draw AS d
WHERE
    d.problem IN ('flag_mismatch', 'contradicting_flags', 'orphaned_appointment')
    OR (d.problem = 'none' AND d.shape < 0.50);
"""
)

LOAD_SQL = (
    "SET LOCAL session_replication_role = replica;\n"
    + COMPANIES_SQL
    + DRAW_SQL
    + ROWS_FROM_DRAW_SQL
    + "SELECT setval(pg_get_serial_sequence('public.calls', 'id'), %(calls)s);\n"
    + f"SELECT setval(pg_get_serial_sequence('public.companies', 'id'), {COMPANIES});\n"
)


def fill(template: str, **values: object) -> bytes:
    """The template with its %(name)s placeholders replaced (values are numbers or SQL we wrote:
    the statements carry no parameters, so one message holds them all)."""
    for name, value in values.items():
        template = template.replace(f"%({name})s", str(value))
    return template.encode()


def load_sql(
    calls: int,
    *,
    days: float = DAYS,
    recent: int | None = None,
    bad_rows: int | None = None,
    rates: Mapping[str, float] = PROBLEM_RATES,
) -> bytes:
    """LOAD_SQL for `calls` calls over `days` days (recent: that many within the last hour),
    the newest `bad_rows` of them (default: all) with problems at `rates`."""
    created_at = _EVEN_CREATED_AT if recent is None else _BURST_CREATED_AT
    return fill(
        LOAD_SQL.replace("%(created_at)s", created_at).replace("%(problem)s", problem_case(rates)),
        id="g",
        calls=int(calls),
        days=float(days),
        recent=int(recent or 0),
        bad_rows=int(calls if bad_rows is None else bad_rows),
    )


def _ms(conn: psycopg.Connection[Any], sql: str) -> tuple[float, list[tuple[Any, ...]]]:
    started = time.perf_counter()
    rows = conn.execute(sql.encode()).fetchall()
    return (time.perf_counter() - started) * 1000, rows


def build(
    url: str,
    calls: int,
    progress: Any,
    recent: int | None = None,
    *,
    days: float = DAYS,
    bad_rows: int | None = None,
    analyze: bool = True,
) -> dict[str, Any]:
    """recent: that many of the calls within the last hour (default: evenly over `days`);
    bad_rows: only the newest that many calls may carry a problem (default: all of them);
    analyze: VACUUM ANALYZE at the end (a caller that loads more does its own)."""
    with Migrator(url) as migrator:
        migrator.apply(to=LEGACY_UNTIL)
        progress(f"loading {calls:,} calls (triggers bypassed, as a legacy application wrote them)")
        started = time.perf_counter()
        with psycopg.connect(url) as conn, conn.transaction():
            conn.execute(load_sql(calls, days=days, recent=recent, bad_rows=bad_rows))
        load_s = time.perf_counter() - started
        progress("applying the remaining migrations")
        started = time.perf_counter()
        migrator.apply()
        migrate_s = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        if analyze:
            conn.execute("VACUUM ANALYZE")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM public.calls), (SELECT count(*) FROM public.appointments)"
        ).fetchone()
    assert counts is not None
    return {"load_s": load_s, "migrate_s": migrate_s, "calls": counts[0], "appointments": counts[1]}


def measure(url: str, repeat: int, progress: Any) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        has_detect = conn.execute("SELECT to_regprocedure('guard.detect()') IS NOT NULL").fetchone()
        if not has_detect or not has_detect[0]:
            raise SystemExit("guard.detect() does not exist in this checkout's migrations")
        window_row = conn.execute(
            "SELECT (guard.setting('detection_window_minutes') #>> '{}')::integer"
        ).fetchone()
        window = int(window_row[0]) if window_row else 60
        rules = conn.execute(
            "SELECT id, check_view FROM guard.checks"
            " WHERE enabled AND check_view IS NOT NULL ORDER BY id"
        ).fetchall()
        in_window = conn.execute(
            "SELECT count(*) FROM public.calls"
            " WHERE created_at >= now() - make_interval(mins => %s)",
            (window,),
        ).fetchone()
        per_rule = []
        for check_id, view in rules:
            sql = (
                f"SELECT count(*) FROM guard.{view}"  # view names come from guard.checks
                f" WHERE observed_at >= now() - make_interval(mins => {window})"
            )
            _ms(conn, sql)  # warm the cache once
            timings = [_ms(conn, sql) for _ in range(repeat)]
            per_rule.append(
                {
                    "check_id": check_id,
                    "view": f"guard.{view}",
                    "offending": timings[0][1][0][0],
                    "ms": statistics.median(t for t, _ in timings),
                }
            )
        progress("detect: first pass")
        first_ms, first_rows = _ms(conn, "SELECT * FROM guard.detect()")
        progress("detect: steady passes")
        steady = [_ms(conn, "SELECT * FROM guard.detect()") for _ in range(repeat)]
        steady_rows = steady[-1][1]
        progress("reconcile: one pass")
        reconcile_ms, reconcile_rows = _ms(conn, "SELECT * FROM guard.reconcile()")
        detect_after_ms, _ = _ms(conn, "SELECT * FROM guard.detect()")
    summary = {row[0]: row for row in first_rows}
    for row in per_rule:
        found = summary.get(row["check_id"])
        row["opened_first_pass"] = found[3] if found else None
    return {
        "window_minutes": window,
        "calls_in_window": in_window[0] if in_window else None,
        "rules": per_rule,
        "detect_first_ms": first_ms,
        "detect_steady_ms": statistics.median(t for t, _ in steady),
        "detect_steady_all_ms": [t for t, _ in steady],
        "detect_after_reconcile_ms": detect_after_ms,
        "detect_summary": [list(r) for r in steady_rows],
        "reconcile_ms": reconcile_ms,
        "reconcile": [list(r) for r in reconcile_rows],
    }


def print_table(header: dict[str, Any], built: dict[str, Any], result: dict[str, Any]) -> None:
    print(f"Detection over {built['calls']:,} calls, {built['appointments']:,} appointments")
    print(f"  {header['server']}; {header['cores']} cores; median of {header['repeat']} runs")
    print(
        f"  load {built['load_s']:.1f} s, remaining migrations {built['migrate_s']:.1f} s;"
        f" window {result['window_minutes']} min = {result['calls_in_window']:,} calls"
    )
    print()
    print(f"{'check (its view, windowed)':<34}{'offending':>10}{'ms':>10}")
    for row in result["rules"]:
        print(f"{row['check_id']:<34}{row['offending']:>10}{row['ms']:>10.2f}")
    print()
    print(f"{'pass':<34}{'ms':>20}")
    print(f"{'guard.detect() first pass':<34}{result['detect_first_ms']:>20.1f}")
    print(f"{'guard.detect() steady pass':<34}{result['detect_steady_ms']:>20.1f}")
    print(f"{'guard.reconcile() one pass':<34}{result['reconcile_ms']:>20.1f}")
    print(f"{'guard.detect() after reconcile':<34}{result['detect_after_reconcile_ms']:>20.1f}")
    print()
    print("reconcile:", ", ".join(f"{a}={n}" for a, n in result["reconcile"]) or "nothing")
    print()
    for goal in targets(built, result):
        print(f"  {goal['result']:<5} {goal['target']}: {goal['detail']}")


def targets(built: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    steady = result["detect_steady_ms"]
    ok = steady <= TARGET_MS and built["calls"] >= 1_000_000 and result["window_minutes"] == 60
    return [
        {
            "target": "full detection pass over 1 000 000 calls (one-hour window)"
            f" <= {TARGET_MS:.0f} ms",
            "result": "PASS" if ok else "FAIL",
            "detail": f"steady pass {steady:.1f} ms over {built['calls']:,} calls"
            f" (first pass, opening every alert: {result['detect_first_ms']:.1f} ms)",
        }
    ]


def main(argv: list[str] | None = None) -> int:
    args = bench_parser(__doc__, "calls", CALLS, "calls to load").parse_args(argv)
    with bench_database(DATABASE) as (cluster, server):
        url = cluster.url(DATABASE)
        built = build(url, args.calls, progress)
        result = measure(url, args.repeat, progress)

    print_measured(args, server, built, result, print_table, targets=targets(built, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
