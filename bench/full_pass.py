"""The full detection pass against `dbt test` on the same database: wall and in-database time.

    python -m bench.full_pass [--calls N] [--problems N] [--repeat N] [--new-calls N] [--keep]
                                                                       # make bench-dbt

One throwaway cluster (bench/_cluster.py) with bench/detect.py's legacy database: --calls calls
(default 1 000 000) over 30 days, about half of them booked, and about --problems seeded
problems (default 400: the incident's problems at rates scaled down, spread over the whole
history), each labelled with the check that must find it. Then a throwaway virtualenv with the
newest dbt-postgres (and dbt-core below 1.12, whose parser downloads a binary when it is
installed), and a dbt project with one singular test per check view of sql/checks/: the view's
own SELECT, so both tools ask the same question of the same tables.

Measured, interleaved round by round (--repeat rounds, medians; the order alternates):
- the full pass: `guard check --all` (the whole history, as an operator runs it) and
  `dbt test`, each as its command line, wall time, the database's active time
  (pg_stat_database.active_time: every session of the run, parse and plan included, but not
  its parallel workers, which PostgreSQL does not count there) and the server's CPU time (the
  user and system time of every server process that ended during the run: its sessions and
  their parallel workers, read from the postmaster's reaped children in /proc);
- the incremental pass after --new-calls new calls (default 1 000, the seeded rate of
  problems): `guard check` (the windowed pass) against `dbt test` again, which has no other.
Before the rounds, each tool runs once (the first `guard check --all` opens every alert, and
dbt parses its project); then recall: every seeded problem must be an open alert and a failing
row of its dbt test (`dbt test --store-failures`, untimed). Exits 1 when either misses one.
Small runs: `--calls 100000 --repeat 2` finishes in about a minute plus the install.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import detect
from bench._cluster import bench_database, print_report, progress
from bench.scale import WRITABLE_PROBLEMS, write_calls
from guard.demo.sample_data import PROBLEM_RATES
from guard.schema.migrate import Migrator

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ROOT / "sql" / "checks"
GUARD = Path(sys.executable).with_name("guard")
DATABASE = "bench_full_pass"
# dbt-core 1.12 needs dbt-core-experimental-parser, whose build downloads a binary from outside
# the package index: the newest dbt-core that installs from the index alone.
DBT_PACKAGES = ("dbt-postgres", "dbt-core<1.12")
DBT_SCHEMA = "dbt_bench"
# A seeded booking failure counts for recent_booking_failure while it is inside the failure
# window for the whole run: one that leaves it meanwhile is no miss.
WINDOW_MARGIN = "10 minutes"
# Active time that two reads 0.3 s apart may differ by once every run's session has reported.
SETTLED_MS = 5.0

# Which check must find each seeded problem, as the fingerprint of its alert.
SEEDED_SQL = f"""
SELECT s.problem, f.fingerprint
FROM bench_truth.seeded AS s
CROSS JOIN LATERAL (
    SELECT CASE s.problem
        WHEN 'phantom_booking' THEN 'booked_without_appointment:call:' || s.id
        WHEN 'flag_mismatch' THEN 'flags_contradict_appointments:call:' || s.id
        WHEN 'contradicting_flags' THEN 'flags_contradict_appointments:call:' || s.id
        WHEN 'missing_direction' THEN 'call_without_direction:call:' || s.id
        WHEN 'incomplete_customer_link' THEN 'cross_tenant_link:call:' || s.id
        WHEN 'orphaned_appointment' THEN 'orphaned_voice_appointment:appointment:' || (
            SELECT a.id FROM public.appointments AS a WHERE a.calcom_v2_booking_id = 'bk_' || s.id
        )
    END AS fingerprint
    UNION ALL
    SELECT 'recent_booking_failure:call:' || s.id
    WHERE
        s.problem IN ('booking_failure', 'contradicting_flags')
        AND s.created_at >= now() + interval '{WINDOW_MARGIN}' - make_interval(
            mins => (guard.setting('failure_window_minutes') #>> '{{}}')::integer
        )
) AS f
WHERE f.fingerprint IS NOT NULL
"""


def build(url: str, calls: int, problems: int) -> dict[str, Any]:
    """bench/detect.py's database, with about `problems` problems spread over the history and
    each seeded call's problem kept in bench_truth.seeded."""
    scale = problems / (calls * sum(PROBLEM_RATES.values()))
    rates = {name: rate * scale for name, rate in PROBLEM_RATES.items()}
    with Migrator(url) as migrator:
        migrator.apply(to=detect.LEGACY_UNTIL)
        progress(f"loading {calls:,} calls, about {problems} seeded problems")
        with psycopg.connect(url) as conn, conn.transaction():
            conn.execute(
                detect.load_sql(calls, bad_rows=calls, rates=rates) + b"CREATE SCHEMA bench_truth;"
                b" CREATE TABLE bench_truth.seeded AS"
                b" SELECT d.id, d.problem, d.created_at FROM draw AS d WHERE d.problem <> 'none';"
            )
        progress("applying the remaining migrations")
        migrator.apply()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM public.calls),"
            " (SELECT count(*) FROM public.appointments),"
            " (SELECT count(*) FROM bench_truth.seeded)"
        ).fetchone()
    assert row is not None
    return {"calls": row[0], "appointments": row[1], "seeded": row[2], "rates": rates}


def check_views() -> dict[str, str]:
    """Each shipped check view's name and its SELECT (the file less its CREATE VIEW line)."""
    views = {}
    for path in sorted(CHECKS.glob("guard.*.sql")):
        text = path.read_text()
        body = re.split(r"^CREATE OR REPLACE VIEW [^\n]*\bAS\n", text, maxsplit=1, flags=re.M)[1]
        # its closing semicolon may have a comment after it
        views[path.stem.removeprefix("guard.")] = re.sub(r";([ \t]*--[^\n]*)?\s*$", r"\1", body)
    return views


def write_dbt_project(directory: Path, url: str) -> list[str]:
    """A dbt project beside its profile, one singular test per check view; returns their names."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    (directory / "dbt_project.yml").write_text(
        "name: booking_guard_checks\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "flags:\n  send_anonymous_usage_stats: false\n"
    )
    (directory / "profiles.yml").write_text(
        "bench:\n  target: bench\n  outputs:\n    bench:\n      type: postgres\n"
        f"      host: {info['host']}\n      port: {info['port']}\n      user: {info['user']}\n"
        f"      password: ''\n      dbname: {info['dbname']}\n      schema: {DBT_SCHEMA}\n"
        "      threads: 1\n"
    )
    tests = directory / "tests"
    tests.mkdir()
    views = check_views()
    for name, body in views.items():
        # raw: a view's text is SQL, never a template
        (tests / f"{name}.sql").write_text("{% raw %}\n" + body + "\n{% endraw %}\n")
    return list(views)


@dataclass(frozen=True)
class Run:
    wall: float
    in_db: float
    server_cpu: float

    KEYS: ClassVar[tuple[str, ...]] = ("wall", "in_db", "server_cpu")
    LABELS: ClassVar[tuple[str, ...]] = (
        "wall",
        "sessions' active time",
        "server CPU (parallel workers included)",
    )


def _postmaster_pid(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(_proc_stat(int(row[0]))[1])


def _proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on: the command name before it may hold spaces."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


class Runner:
    """Runs each tool's command and measures its wall time, the database's active time and the
    server's CPU time."""

    def __init__(self, url: str, dbt: Path, project: Path) -> None:
        self.url = url
        self.dbt = dbt
        self.project = project
        self.env = {
            **os.environ,
            "GUARD_DATABASE_URL": url,
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        self.postmaster = _postmaster_pid(url)

    def active_ms(self) -> float:
        """The database's active time so far, once the sessions that ended have reported theirs
        (a session reports at its exit; each read here adds its own few microseconds)."""
        last = -1.0
        while True:
            with psycopg.connect(self.url) as conn:
                row = conn.execute(
                    "SELECT active_time FROM pg_stat_database WHERE datname = current_database()"
                ).fetchone()
            value = float(row[0]) if row else 0.0
            if value - last < SETTLED_MS:
                return value
            last = value
            time.sleep(0.3)

    def server_cpu_s(self) -> float:
        """User and system time of the server processes that ended so far (cutime, cstime): a
        session and its parallel workers are the postmaster's children, reaped as they exit."""
        fields = _proc_stat(self.postmaster)
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    def run(self, argv: list[str]) -> tuple[Run, subprocess.CompletedProcess[str]]:
        before, cpu_before = self.active_ms(), self.server_cpu_s()
        started = time.perf_counter()
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        in_db = (self.active_ms() - before) / 1000
        return Run(wall, in_db, self.server_cpu_s() - cpu_before), done

    def guard(self, *args: str) -> Run:
        run, done = self.run([str(GUARD), *args])
        # exit 1: something offends, which is what the fixture is for
        if done.returncode not in (0, 1):
            raise SystemExit(f"guard {' '.join(args)} failed:\n{done.stderr}")
        return run

    def dbt_test(self, *args: str) -> Run:
        argv = [str(self.dbt), "test", "--project-dir", str(self.project)]
        run, done = self.run([*argv, "--profiles-dir", str(self.project), *args])
        if not (self.project / "target" / "run_results.json").exists():
            raise SystemExit(f"dbt test did not run:\n{done.stdout}\n{done.stderr}")
        results = json.loads((self.project / "target" / "run_results.json").read_text())
        errors = [r["unique_id"] for r in results["results"] if r["status"] == "error"]
        if errors:
            raise SystemExit(f"dbt test: {', '.join(errors)} raised:\n{done.stdout}")
        return run


def recall(conn: psycopg.Connection[Any], tests: list[str]) -> dict[str, Any]:
    """Each seeded problem against the open alerts and the failing rows dbt stored."""
    seeded = conn.execute(SEEDED_SQL).fetchall()
    alerts = {
        r[0] for r in conn.execute("SELECT fingerprint FROM guard.alerts WHERE status = 'open'")
    }
    failing: set[str] = set()
    for name in tests:
        failing |= {
            r[0]
            for r in conn.execute(
                f"SELECT check_id || ':' || entity_type || ':' || entity_id"
                f' FROM "{DBT_SCHEMA}_dbt_test__audit"."{name}"'  # names of our own tests
            )
        }
    by_problem: dict[str, list[int]] = {}
    for problem, fingerprint in seeded:
        row = by_problem.setdefault(problem, [0, 0, 0])
        row[0] += 1
        row[1] += fingerprint in alerts
        row[2] += fingerprint in failing
    return {
        "seeded": len(seeded),
        "guard": sum(r[1] for r in by_problem.values()),
        "dbt": sum(r[2] for r in by_problem.values()),
        "by_problem": by_problem,
    }


def install_dbt(directory: Path) -> tuple[Path, str]:
    venv.create(directory, with_pip=True)
    python = str(directory / "bin" / "python")
    progress(f"installing {', '.join(DBT_PACKAGES)} into {directory}")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *DBT_PACKAGES],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    versions = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m;"
            "print(', '.join(p + ' ' + m.version(p) for p in ('dbt-core', 'dbt-postgres')))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return directory / "bin" / "dbt", versions


def measure(url: str, runner: Runner, tests: list[str], args: argparse.Namespace) -> dict[str, Any]:
    # the fixture's rate of the problems a new call can still have
    rates = {name: rate for name, rate in args.rates.items() if name in WRITABLE_PROBLEMS}
    progress("first runs: guard check --all opens every alert, dbt parses its project")
    first = {"guard": runner.guard("check", "--all"), "dbt": runner.dbt_test()}
    progress("recall: dbt test --store-failures")
    runner.dbt_test("--store-failures")
    with psycopg.connect(url, autocommit=True) as conn:
        found = recall(conn, tests)
        conn.execute(f'DROP SCHEMA "{DBT_SCHEMA}_dbt_test__audit" CASCADE')
    rows: dict[str, list[Run]] = {
        "full guard": [],
        "full dbt": [],
        "incremental guard": [],
        "incremental dbt": [],
    }
    for number in range(args.repeat):
        progress(f"round {number + 1}/{args.repeat}")
        guard_args: dict[str, list[str]] = {"full": ["check", "--all"], "incremental": ["check"]}
        for kind in ("full", "incremental"):
            if kind == "incremental":
                write_calls(url, args.new_calls, 300.0, rates)
            tools = ["guard", "dbt"] if number % 2 == 0 else ["dbt", "guard"]
            for tool in tools:
                run = runner.guard(*guard_args[kind]) if tool == "guard" else runner.dbt_test()
                rows[f"{kind} {tool}"].append(run)
    medians = {
        name: {
            **{f"{key}_s": statistics.median(getattr(r, key) for r in runs) for key in Run.KEYS},
            **{f"{key}_all_s": [round(getattr(r, key), 3) for r in runs] for key in Run.KEYS},
        }
        for name, runs in rows.items()
    }
    return {
        "first": {k: {f"{key}_s": getattr(r, key) for key in Run.KEYS} for k, r in first.items()},
        "passes": medians,
        "recall": found,
    }


def print_table(header: dict[str, Any], built: dict[str, Any], result: dict[str, Any]) -> None:
    print(
        f"The full detection pass against dbt test: {built['calls']:,} calls,"
        f" {built['appointments']:,} appointments, {built['seeded']} seeded problems,"
        f" {header['checks']} check views"
    )
    print(
        f"  {header['server']}; {header['cores']} cores; {header['dbt']};"
        f" median of {header['repeat']} interleaved rounds"
    )
    print()
    print("| pass | measure | guard s | dbt s | ratio |")
    print("|---|---|---|---|---|")
    passes = result["passes"]
    for kind in ("full", "incremental"):
        g, d = passes[f"{kind} guard"], passes[f"{kind} dbt"]
        for key, label in zip(Run.KEYS, Run.LABELS, strict=True):
            mine, theirs = g[f"{key}_s"], d[f"{key}_s"]
            ratio = mine / max(theirs, 1e-9)
            print(f"| {kind} | {label} | {mine:.2f} | {theirs:.2f} | {ratio:.2f} |")
    first = result["first"]
    print(
        f"first runs (untimed rounds): guard check --all {first['guard']['wall_s']:.2f} s"
        f" ({first['guard']['in_db_s']:.2f} s in the database, opening every alert),"
        f" dbt test {first['dbt']['wall_s']:.2f} s ({first['dbt']['in_db_s']:.2f} s, parsing)"
    )
    print("incremental: `guard check` (the window) after the new calls; dbt test reads all again")
    print()
    found = result["recall"]
    print(f"{'recall: seeded problem':<28}{'seeded':>8}{'guard':>8}{'dbt':>8}")
    for problem, (seeded, by_guard, by_dbt) in sorted(found["by_problem"].items()):
        print(f"{problem:<28}{seeded:>8}{by_guard:>8}{by_dbt:>8}")
    print(f"{'all':<28}{found['seeded']:>8}{found['guard']:>8}{found['dbt']:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=detect.CALLS, help="calls to load")
    parser.add_argument("--problems", type=int, default=400, help="problems to seed (about)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--new-calls", type=int, default=1000, help="calls before the increment")
    parser.add_argument("--keep", action="store_true", help="leave the virtualenv in place")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="guard-dbt-"))
    try:
        dbt, versions = install_dbt(directory / "venv")
        with bench_database(DATABASE) as (cluster, server):
            url = cluster.url(DATABASE)
            built = build(url, args.calls, args.problems)
            args.rates = built.pop("rates")
            project = directory / "project"
            project.mkdir()
            tests = write_dbt_project(project, url)
            result = measure(url, Runner(url, dbt, project), tests, args)
    finally:
        if args.keep:
            progress(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    header = {
        "server": server,
        "cores": os.cpu_count(),
        "repeat": args.repeat,
        "dbt": versions,
        "checks": len(tests),
    }
    print_report(
        args.json,
        {"header": header, "data": built, **result},
        lambda: print_table(header, built, result),
    )
    found = result["recall"]
    return 0 if found["guard"] == found["dbt"] == found["seeded"] else 1


if __name__ == "__main__":
    sys.exit(main())
