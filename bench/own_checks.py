"""What isolating each check costs guard.check_call, the application's everyday path.

    python -m bench.own_checks [--calls N] [--iterations N] [--counted N] [--json]

Every check of a call now runs in a block of its own (guard.run_checks: a subtransaction, so a
check that raises is rolled back alone), Booking Guard's checks first and a DBA's own after them
within check_call_budget_ms. The baseline, measured in the same run on the same database, is
check_call as it was before: guard.run_detection and guard.check_call of commit d4facb0 (read
with `git show`), installed as bench_baseline.run_detection and bench_baseline.check_call. The
two differ in what isolation adds: the block around each check's view as well as its alert
writes (before, only the writes had one), the order of the checks (a join with
guard.definitions), each own check's budget and left-out test, and two more result columns.

One throwaway cluster, N calls of 10 companies with a booked appointment each (nothing offends:
what most bookings meet) and 2,000 open alerts of other rows. Variants:

- own checks: 0, 1 and 4 views of the DBA's own (the docs' example: appointments without a start
  time, found by the call's index), the same for the baseline and the isolated check_call;
- a failing own check (raises on every call): the isolated check_call only (the baseline raises);
- an own check left out of check_call (its check_over_budget alert fresh): isolated only.

Two measures, each against the baseline with the same own checks (the failing and left-out
variants: the baseline without own checks):

- instructions (valgrind callgrind on a single-user backend, as bench/instructions.py counts
  them: deterministic, unlike time on a shared machine): --counted check_calls of distinct calls
  after 20 that warm the session, on a fresh clone per variant; per check_call, the ratio, and
  the difference per check (13 of Booking Guard's, plus the own ones);
- time: check_call(id) of random calls, one transaction each, the variants in turns of 50 so
  drift in the machine's speed spreads over all of them: the client's p50 (round trip and
  commit) and the server's (the statement from its arrival to its last row).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_database, print_report, progress
from bench.instructions import count_instructions
from guard.demo.embedded import EmbeddedCluster
from guard.schema.migrate import Migrator

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "d4facb0"
DATABASE = "bench_own_checks"
WARMUP = 20  # check_calls before the counted ones: each session prepares its check queries
TURN = 50
OWN = 4
OPEN_ALERTS = 2000
Conn = psycopg.Connection[tuple[Any, ...]]

_OWN_VIEW = """
CREATE VIEW guard.check_own_{n} WITH (security_invoker = TRUE) AS
SELECT
    'own_{n}'::text AS check_id, a.company_id, 'appointment'::text AS entity_type,
    a.id AS entity_id, a.call_id, 'low'::text AS severity, a.created_at AS observed_at,
    jsonb_build_object('status', a.status) AS detail, 'own_rule'::text AS rule_id
FROM public.appointments AS a
WHERE a.starts_at IS NULL {extra}
"""


def _baseline_sql() -> list[str]:
    """guard.run_detection and guard.check_call before isolation, renamed into bench_baseline."""
    texts = []
    for name in ("run_detection", "check_call"):
        shown = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:sql/functions/guard.{name}.sql"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode != 0:
            raise SystemExit(
                f"bench.own_checks needs the git history (commit {BASELINE_COMMIT}):"
                f" {shown.stderr.strip()}"
            )
        text = re.sub(r"\bguard\.(run_detection|check_call)\(", r"bench_baseline.\1(", shown.stdout)
        texts.append(text)
    return ["CREATE SCHEMA bench_baseline", *texts]


def build(url: str, calls: int, progress: Callable[[str], None]) -> None:
    progress("migrating")
    with Migrator(url) as migrator:
        migrator.apply()
    progress(f"loading {calls} calls with a booked appointment each")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO companies (id, name)"
            " SELECT g, 'company ' || g FROM generate_series(1, 10) AS g"
        )
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, direction)"
            " SELECT g, g %% 10 + 1, 'c' || g, 'inbound' FROM generate_series(1, %s) g",
            (calls,),
        )
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at,"
            " ends_at) SELECT g, g %% 10 + 1, g, 'uid-' || g, now() + interval '1 day',"
            " now() + interval '1 day 30 min' FROM generate_series(1, %s) g",
            (calls,),
        )
        conn.execute(
            "INSERT INTO guard.rules (id, severity, description, remedy)"
            " VALUES ('own_rule', 'low', 'own', 'report')"
        )
        for n in range(1, OWN + 1):
            conn.execute(_OWN_VIEW.format(n=n, extra=""))
            conn.execute(
                "SELECT guard.register_check(%s, 'own_rule', %s, 'low', 'own')",
                (f"own_{n}", f"check_own_{n}"),
            )
        conn.execute(_OWN_VIEW.format(n="failing", extra="OR 1 / (a.id - a.id) = 1"))
        conn.execute(
            "SELECT guard.register_check('own_failing', 'own_rule', 'check_own_failing',"
            " 'low', 'own')"
        )
        conn.execute(_OWN_VIEW.format(n="left_out", extra=""))
        conn.execute(
            "SELECT guard.register_check('own_left_out', 'own_rule', 'check_own_left_out',"
            " 'low', 'own')"
        )
        # read through by a detection pass (check_call runs no own check no pass has read):
        # the failing one too, as it was before it began to fail
        conn.execute(
            "INSERT INTO guard.detection_runs (pass_started_at, check_id, rule_id, duration_ms,"
            " offending, opened, repeated, resolved) SELECT now(), k.id, k.rule_id, 1, 0, 0, 0, 0"
            " FROM guard.checks AS k WHERE k.rule_id = 'own_rule'"
        )
        # a database that has been watched for a while: open alerts of other rows
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message) SELECT 'unknown_value:call:' || g, 'unknown_value', g %% 10 + 1,"
            " 'call', g, 'high', 'bench' FROM generate_series(%s::bigint, %s::bigint) AS g",
            (calls + 1, calls + OPEN_ALERTS),
        )
        for statement in _baseline_sql():
            conn.execute(statement)
        # the baseline runs as check_call does: SECURITY DEFINER as the owner role (row-level
        # security of guard.alerts included)
        conn.execute("GRANT USAGE ON SCHEMA bench_baseline TO guard_owner")
        conn.execute(
            "ALTER FUNCTION bench_baseline.run_detection(timestamptz, bigint) OWNER TO guard_owner"
        )
        conn.execute("ALTER FUNCTION bench_baseline.check_call(bigint) OWNER TO guard_owner")
        conn.execute("ANALYZE")


def _enable(conn: Conn, own: int, failing: bool, left_out: bool) -> None:
    conn.execute(
        "UPDATE guard.checks SET enabled = (id = ANY(%s)) WHERE rule_id = 'own_rule'",
        (
            [f"own_{n}" for n in range(1, own + 1)]
            + (["own_failing"] if failing else [])
            + (["own_left_out"] if left_out else []),
        ),
    )
    if left_out:
        conn.execute(
            "SELECT guard.open_check_alert('check_over_budget', 'own_left_out', 'bench', '{}')"
        )


# (label, function, own checks, a failing one, one left out)
VARIANTS: list[tuple[str, str, int, bool, bool]] = [
    ("baseline, 0 own", "bench_baseline.check_call", 0, False, False),
    ("isolated, 0 own", "guard.check_call", 0, False, False),
    ("baseline, 1 own", "bench_baseline.check_call", 1, False, False),
    ("isolated, 1 own", "guard.check_call", 1, False, False),
    ("baseline, 4 own", "bench_baseline.check_call", 4, False, False),
    ("isolated, 4 own", "guard.check_call", 4, False, False),
    ("isolated, 1 own failing on every call", "guard.check_call", 0, True, False),
    ("isolated, 1 own left out (over budget)", "guard.check_call", 0, False, True),
]


def timed(url: str, calls: int, iterations: int, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(50)
    client: dict[str, list[float]] = {label: [] for label, *_ in VARIANTS}
    server: dict[str, list[float]] = {label: [] for label, *_ in VARIANTS}
    with psycopg.connect(url, autocommit=True) as admin, psycopg.connect(url) as app:
        progress(f"time: {iterations} check_calls per variant, in turns of {TURN}")
        for _ in range(0, iterations, TURN):
            for label, function, own, failing, left_out in VARIANTS:
                _enable(admin, own, failing, left_out)
                # the server's time for the statement: from its arrival to its last row
                query = (
                    "SELECT 1000 * extract(EPOCH FROM clock_timestamp() - statement_timestamp())"
                    f" FROM (SELECT count(*) FROM {function}(%s)) AS c"
                )
                app.execute(query, (1,)).fetchall()  # prepared again after the change
                app.commit()
                for _ in range(TURN):
                    call = rng.randint(1, calls)
                    started = time.perf_counter()
                    [(server_ms,)] = app.execute(query, (call,)).fetchall()
                    app.commit()
                    client[label].append(1000 * (time.perf_counter() - started))
                    server[label].append(float(server_ms))
    return {
        label: {
            "client_p50_ms": statistics.median(client[label]),
            "server_p50_ms": statistics.median(server[label]),
        }
        for label, *_ in VARIANTS
    }


def counted(
    cluster: EmbeddedCluster, calls: int, count: int, progress: Callable[[str], None]
) -> dict[str, int]:
    """Instructions per check_call of each variant (valgrind, single-user backend)."""
    settings = {"shared_buffers": "256MB", "jit": "off"}
    picked = random.Random(9).sample(range(1, calls + 1), WARMUP + count)
    result: dict[str, int] = {}
    for number, (label, function, own, failing, left_out) in enumerate(VARIANTS):
        statements = [f"SELECT count(*) FROM {function}({call})" for call in picked]
        base_db, full_db = f"own_checks_{number}_base", f"own_checks_{number}_full"
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            for database in (base_db, full_db):
                admin.execute(f"CREATE DATABASE {database} TEMPLATE {DATABASE}")
        for database in (base_db, full_db):
            with psycopg.connect(cluster.url(database), autocommit=True) as conn:
                _enable(conn, own, failing, left_out)
                # under valgrind a call takes 50 times as long: no own check may run out of
                # check_call's budget here (the left-out one is left out by its alert)
                conn.execute(
                    "UPDATE guard.settings SET value = '600000' WHERE key = 'check_call_budget_ms'"
                )
        cluster.stop()  # a single-user backend needs the data directory to itself
        try:
            base = count_instructions(cluster, base_db, statements[:WARMUP], settings)
            full = count_instructions(cluster, full_db, statements, settings)
        finally:
            cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            for database in (base_db, full_db):
                admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
        result[label] = (full - base) // count
        progress(f"instructions, {label}: {result[label]:,} per check_call")
    return result


def report(
    instructions: dict[str, int], times: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    rows = []
    for label, _, own, _, _ in VARIANTS:
        baseline = f"baseline, {own} own"
        added = instructions[label] - instructions[baseline]
        rows.append(
            {
                "variant": label,
                "instructions": instructions[label],
                "ratio": instructions[label] / instructions[baseline],
                "added_per_check": added / (13 + own),
                **times[label],
                "server_ratio": times[label]["server_p50_ms"] / times[baseline]["server_p50_ms"],
            }
        )
    return rows


def print_table(result: dict[str, Any]) -> None:
    print(
        f"check_call with each check isolated, against check_call of {BASELINE_COMMIT} in the same"
        f" run: {result['calls']} calls loaded; instructions of {result['counted']} check_calls,"
        f" time of {result['iterations']} per variant ({result['cores']} cores)"
    )
    print(
        f"{'variant':40} {'instr/call':>11} {'vs base':>8} {'+instr/check':>13}"
        f" {'client p50 ms':>14} {'server p50 ms':>14} {'vs base':>8}"
    )
    for row in result["rows"]:
        print(
            f"{row['variant']:40} {row['instructions']:11,} {row['ratio']:7.3f}x"
            f" {row['added_per_check']:13,.0f} {row['client_p50_ms']:14.3f}"
            f" {row['server_p50_ms']:14.3f} {row['server_ratio']:7.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls to load")
    parser.add_argument(
        "--iterations", type=int, default=1000, help="timed check_calls per variant"
    )
    parser.add_argument(
        "--counted", type=int, default=200, help="check_calls counted by valgrind per variant"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    iterations = max(TURN, args.iterations // TURN * TURN)

    with bench_database(DATABASE, {"jit": "off"}) as (cluster, _server):
        build(cluster.url(DATABASE), args.calls, progress)
        instructions = counted(cluster, args.calls, args.counted, progress)
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}_timed TEMPLATE {DATABASE}")
        times = timed(cluster.url(f"{DATABASE}_timed"), args.calls, iterations, progress)
    result = {
        "calls": args.calls,
        "counted": args.counted,
        "iterations": iterations,
        "cores": os.cpu_count(),
        "baseline": BASELINE_COMMIT,
        "rows": report(instructions, times),
    }
    print_report(args.json, result, lambda: print_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
