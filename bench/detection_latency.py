"""Detection latency at 1M calls a day, with the jobs scheduled as `guard db apply` schedules them.

    python -m bench.detection_latency [--minutes M] [--rate CALLS_PER_S] [--json]

One throwaway cluster under /tmp with pg_cron (where the server has it): `guard db apply` (the
migrator) on the database pg_cron lives in, with pg_cron installed first, so the jobs are
scheduled as in production (detect every 5 min, detect_queue every 15 s, or every minute on a
pg_cron before 1.5), every setting at its default (grace_period_seconds 30). Then, for each
scenario, an application session writes calls at --rate (default 11.6 a second: 1,000,000 a
day) for --minutes (default 3), each call its own two commits, as a voice platform writes them:
the call is created, then ended (status and outcome):
- 47 %: booked (the appointment, then the end; nothing to find);
- 47 %: ended without a booking (outcome information_only; queued, checked, nothing to find);
- 3 %: a phantom booking: ended with outcome appointment_booked and no appointment;
- 3 %: a problem visible at commit: ended with an outcome outside the known set (unknown_value).
Scenarios: `guard watch` running (the real CLI, `--channel stdout`, in a process of its own) and
pg_cron's jobs; no watcher, `guard jobs run --job detect_queue` (the external runner, on the job's
own schedule, 15 s) beside pg_cron's jobs; pg_cron's jobs alone (the fallback where pg_cron 1.4
runs detect_queue every minute).
A listening session (LISTEN guard_alerts) notes when each call's alert became visible; the
latency is that moment minus the moment the ending commit returned to the application. Phantoms
written in the last grace period plus two minutes are not waited for past the end of the run:
an alert still missing at the end counts as unseen (reported).
Targets: a phantom booking p95 and max <= 60 s; a commit-visible problem p95 and max <= 5 s
(with the watcher; without it, the fallback's figures are shown against the same targets).
Takes about 3 x (minutes + 2) minutes plus the setup.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_cluster
from guard.demo.embedded import pg_cron_available
from guard.schema.migrate import Migrator

RATE = 1_000_000 / 86_400
PHANTOM_TARGET_S = 60.0
COMMIT_VISIBLE_TARGET_S = 5.0
COMPANIES = 10
KINDS = (("booked", 0.47), ("no_booking", 0.47), ("phantom", 0.03), ("unknown_outcome", 0.03))
# the check whose alert each problem kind waits for
ALERT_OF = {"phantom": "booked_without_appointment", "unknown_outcome": "unknown_value"}


@dataclass
class Scenario:
    name: str
    committed: dict[int, tuple[str, float]] = field(default_factory=dict)  # call -> kind, when
    seen: dict[tuple[str, int], float] = field(default_factory=dict)  # (check, call) -> when
    writes: int = 0
    write_errors: int = 0


def _listen(url: str, scenario: Scenario, stop: threading.Event) -> None:
    """Note when each call alert becomes visible (NOTIFY guard_alerts at the alert's commit)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN guard_alerts")
        last = conn.execute("SELECT coalesce(max(id), 0) FROM guard.alerts").fetchone()
        last_id = int(last[0]) if last else 0
        while not stop.is_set():
            for _ in conn.notifies(timeout=0.2, stop_after=1):
                break
            now = time.time()
            rows = conn.execute(
                "SELECT id, check_id, entity_id FROM guard.alerts"
                " WHERE id > %s AND entity_type = 'call' ORDER BY id",
                (last_id,),
            ).fetchall()
            for alert_id, check_id, entity_id in rows:
                scenario.seen.setdefault((str(check_id), int(entity_id)), now)
                last_id = max(last_id, int(alert_id))


def _write(url: str, scenario: Scenario, rate: float, seconds: float, rng: random.Random) -> None:
    """The application: at `rate` calls a second, each call created, then ended (two commits)."""
    names = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True, application_name="bench-app") as app:
        n = 0
        while time.monotonic() - started < seconds:
            due = started + n / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            n += 1
            kind = rng.choices(names, weights)[0]
            company = 1 + n % COMPANIES
            try:
                row = app.execute(
                    "INSERT INTO calls (company_id, retell_call_id, direction,"
                    " customer_link_status, status) VALUES (%s, %s, 'inbound', 'unlinked',"
                    " 'ongoing') RETURNING id",
                    (company, f"{scenario.name}-{n}"),
                ).fetchone()
                assert row is not None
                call = int(row[0])
                if kind == "booked":
                    with app.transaction():
                        app.execute(
                            "INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id,"
                            " source, starts_at) VALUES (%s, %s, %s, 'retell_webhook',"
                            " now() + interval '1 day')",
                            (company, call, f"bk-{scenario.name}-{n}"),
                        )
                        app.execute(
                            "UPDATE calls SET status = 'ended', updated_at = now() WHERE id = %s",
                            (call,),
                        )
                else:
                    outcome = {
                        "no_booking": "information_only",
                        "phantom": "appointment_booked",
                        "unknown_outcome": "appointment_bookd",
                    }[kind]
                    app.execute(
                        "UPDATE calls SET status = 'ended', session_outcome = %s,"
                        " updated_at = now() WHERE id = %s",
                        (outcome, call),
                    )
                scenario.committed[call] = (kind, time.time())
                scenario.writes += 1
            except psycopg.Error:
                scenario.write_errors += 1


def run_scenario(
    url: str, name: str, command: list[str], minutes: float, rate: float, grace_s: float, log: Any
) -> Scenario:
    """command: the `guard` arguments of a process running beside pg_cron (none: pg_cron only)."""
    scenario = Scenario(name)
    stop = threading.Event()
    listener = threading.Thread(target=_listen, args=(url, scenario, stop), daemon=True)
    listener.start()
    watch: subprocess.Popen[bytes] | None = None
    if command:
        guard = shutil.which("guard") or str(Path(sys.executable).with_name("guard"))
        watch = subprocess.Popen(
            [guard, "--database-url", url, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        log(f"{name}: writing {rate:.1f} calls/s for {minutes:g} min")
        _write(url, scenario, rate, minutes * 60, random.Random(7))
        # the last phantoms' grace period, then the fallback's schedule (a minute on pg_cron 1.4)
        wait_s = grace_s + 90
        log(f"{name}: waiting up to {wait_s:.0f} s for the last alerts")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and len(_missing(scenario)) > 0:
            time.sleep(1)
    finally:
        stop.set()
        listener.join(timeout=10)
        if watch is not None:
            watch.terminate()
            watch.wait(timeout=30)
    return scenario


def _missing(scenario: Scenario) -> list[int]:
    return [
        call
        for call, (kind, _) in scenario.committed.items()
        if kind in ALERT_OF and (ALERT_OF[kind], call) not in scenario.seen
    ]


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def figures(scenario: Scenario) -> list[dict[str, Any]]:
    out = []
    for kind, check in ALERT_OF.items():
        latencies = [
            scenario.seen[(check, call)] - when
            for call, (k, when) in scenario.committed.items()
            if k == kind and (check, call) in scenario.seen
        ]
        written = sum(1 for k, _ in scenario.committed.values() if k == kind)
        target = PHANTOM_TARGET_S if kind == "phantom" else COMMIT_VISIBLE_TARGET_S
        p95, worst = _quantile(latencies, 0.95), max(latencies, default=None)
        unseen = written - len(latencies)
        out.append(
            {
                "scenario": scenario.name,
                "kind": kind,
                "check": check,
                "written": written,
                "alerted": len(latencies),
                "p50_s": statistics.median(latencies) if latencies else None,
                "p95_s": p95,
                "max_s": worst,
                "target_s": target,
                "met": bool(
                    latencies
                    and unseen == 0
                    and p95 is not None
                    and worst is not None
                    and p95 <= target
                    and worst <= target
                ),
            }
        )
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_tables(header: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    print(
        f"Detection latency, {header['rate']:.1f} calls/s ({header['per_day']:,.0f} a day) for"
        f" {header['minutes']:g} min per scenario"
    )
    print(
        f"  {header['server']}; {header['cores']} cores; pg_cron {header['pg_cron']};"
        f" grace_period_seconds {header['grace_s']:g}; jobs: {header['jobs']}"
    )
    print()
    print("| scenario | problem | written | alerted | p50 s | p95 s | max s | target (p95, max) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['kind']} ({r['check']}) | {r['written']} | {r['alerted']} |"
            f" {_fmt(r['p50_s'])} | {_fmt(r['p95_s'])} | {_fmt(r['max_s'])} |"
            f" <= {r['target_s']:g} s: {'PASS' if r['met'] else 'FAIL'} |"
        )
    for name, scenario in header["scenarios"].items():
        print(f"  {name}: {scenario['writes']} calls ended, {scenario['write_errors']} errors")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="writing time per scenario")
    parser.add_argument("--rate", type=float, default=RATE, help="calls a second")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    log("starting a throwaway cluster")
    with bench_cluster() as cluster:
        database = cluster.cron_database  # the database pg_cron runs jobs in
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
            server = admin.execute("SELECT version()").fetchone()
        url = cluster.url(database)
        cron = pg_cron_available()
        if cron:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION pg_cron")
        log("guard db apply")
        with Migrator(url) as migrator:
            migrator.apply()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO companies (id, name)"
                " SELECT g, 'Company ' || g FROM generate_series(1, %s) AS g",
                (COMPANIES,),
            )
            grace = conn.execute("SELECT guard.setting('grace_period_seconds') #>> '{}'")
            grace_row = grace.fetchone()
            grace_s = float(grace_row[0]) if grace_row else 0.0
            version = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'"
            ).fetchone()
            jobs = (
                conn.execute(
                    "SELECT string_agg(jobname || ' ' || schedule, ', ' ORDER BY jobname)"
                    " FROM cron.job WHERE jobname IN ('guard_detect', 'guard_detect_queue')"
                ).fetchone()
                if cron
                else None
            )
        runs = [
            ("guard watch + pg_cron", ["watch", "--channel", "stdout"]),
            ("guard jobs run (detect_queue) + pg_cron", ["jobs", "run", "--job", "detect_queue"]),
            ("pg_cron only", []),
        ]
        scenarios = [
            run_scenario(url, name, command, args.minutes, args.rate, grace_s, log)
            for name, command in runs
        ]
    rows = [row for s in scenarios for row in figures(s)]
    header = {
        "server": (server[0] if server else "?").split(" on ")[0],
        "cores": os.cpu_count(),
        "rate": args.rate,
        "per_day": args.rate * 86_400,
        "minutes": args.minutes,
        "grace_s": grace_s,
        "pg_cron": version[0] if version else "not installed",
        "jobs": (jobs[0] if jobs and jobs[0] else "not scheduled (no pg_cron)"),
        "scenarios": {
            s.name: {"writes": s.writes, "write_errors": s.write_errors} for s in scenarios
        },
    }
    if args.json:
        print(json.dumps({"header": header, "rows": rows}, indent=2, default=str))
    else:
        print_tables(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
