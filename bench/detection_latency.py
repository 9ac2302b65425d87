"""Detection latency at 1M calls a day, with the jobs scheduled as `guard db apply` schedules them,
and a flood of commits drained by `guard watch`.

    python -m bench.detection_latency [--minutes M] [--rate CALLS_PER_S] [--jobs-run]
                                      [--flood COMMITS_PER_S] [--flood-seconds S] [--flood-cron]
                                      [--json]

One throwaway cluster under /tmp with pg_cron (where the server has it): `guard db apply` (the
migrator) on the database pg_cron lives in, with pg_cron installed first, so the jobs are
scheduled as in production (detect every 5 min, detect_queue every 15 s: on a pg_cron before 1.5,
minutes only, a run every minute that runs the job again 15, 30 and 45 s into it,
guard.cron_command), every setting at its default (grace_period_seconds 30). Then, for each
scenario, an application session writes calls at --rate (default 11.6 a second: 1,000,000 a
day) for --minutes (default 2), each call its own two commits, as a voice platform writes them:
the call is created, then ended (status and outcome):
- 47 %: booked (the appointment, then the end; nothing to find);
- 47 %: ended without a booking (outcome information_only; queued, checked, nothing to find);
- 3 %: a phantom booking: ended with outcome appointment_booked and no appointment;
- 3 %: a problem visible at commit: ended with an outcome outside the known set (unknown_value).
Scenarios: `guard watch` running (the real CLI, `--channel stdout`, in a process of its own) and
pg_cron's jobs; pg_cron's jobs alone, as shipped; on a pg_cron before 1.5, pg_cron alone with
detect_queue's one run a minute as before guard.cron_command (the job's plain command on
`* * * * *`: the "before" of the same run); with --jobs-run, no watcher, `guard jobs run --job
detect_queue` (the external runner, on the job's own schedule, 15 s) beside pg_cron's jobs.
A listening session (LISTEN guard_alerts) notes when each call's alert became visible; the
latency is that moment minus the moment the ending commit (the call's last write) returned to the
application. "KPI p95" is what guard.kpis counts for the same alerts: first_seen_at minus the
row's last write (written_at). Phantoms written in the last grace period plus 90 s are not
waited for past the end of the run: an alert still missing at the end counts as unseen.
Targets (p95 and max): a phantom booking <= 35 s with `guard watch`, <= 60 s with pg_cron alone; a
problem visible at commit <= 5 s with the watcher, <= 60 s without.
The flood (--flood, default 2000 commits a second, for --flood-seconds, default 20; 0: none),
with `guard watch` and pg_cron (with --flood-cron, again with pg_cron alone: on a pg_cron before
1.5 its job's run drains batch after batch, each committed, and once more as before, one batch
of detection_queue_batch calls a run every 15 s, which takes minutes). --minutes 0: the floods
only.
Calls created beforehand are
ended one commit each by a server-side loop paced at the rate (the same mix without bookings: 94 %
information_only, 3 % phantom, 3 % unknown outcome; every commit queues its call). Sampled every
second: the calls queued and those checked (taken from guard.detection_queue); printed: the
commits a second reached, the calls checked a second while the flood ran, the most calls waiting
that were due, how long after the flood's last commit the queue held no call due, and the
phantoms' latency. Drained as fast as it comes: the calls checked a second keep up with the
commits, and the due backlog empties within seconds of the end.
Takes about 3 x (minutes + 2) minutes plus the flood (a minute) plus the setup.
"""

from __future__ import annotations

import argparse
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

from bench._cluster import bench_cluster, print_report, progress
from guard.demo.embedded import pg_cron_available
from guard.schema.migrate import Migrator

RATE = 1_000_000 / 86_400
COMPANIES = 10
KINDS = (("booked", 0.47), ("no_booking", 0.47), ("phantom", 0.03), ("unknown_outcome", 0.03))
# the check whose alert each problem kind waits for
ALERT_OF = {"phantom": "booked_without_appointment", "unknown_outcome": "unknown_value"}
# (phantom, visible at commit) targets for p95 and max, by whether guard watch drains the queue
TARGETS = {
    True: {"phantom": 35.0, "unknown_outcome": 5.0},
    False: {"phantom": 60.0, "unknown_outcome": 60.0},
}
WATCH = ["watch", "--channel", "stdout"]
ALERT_ID_MARGIN = 3000
FLOOD_MIX = (("no_booking", 0.94), ("phantom", 0.03), ("unknown_outcome", 0.03))
OUTCOME = {
    "no_booking": "information_only",
    "phantom": "appointment_booked",
    "unknown_outcome": "appointment_bookd",
}


@dataclass
class Scenario:
    name: str
    watched: bool  # guard watch drains the queue
    committed: dict[int, tuple[str, float]] = field(default_factory=dict)  # call -> kind, when
    seen: dict[tuple[str, int], float] = field(default_factory=dict)  # (check, call) -> when
    kpi: dict[tuple[str, int], float] = field(default_factory=dict)  # guard.kpis' own measure
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
            # alerts commit out of id order (a detection pass's transaction is longer than a
            # drain's): the last few thousand ids are read again
            rows = conn.execute(
                "SELECT id, check_id, entity_id FROM guard.alerts"
                " WHERE id > %s AND entity_type = 'call' ORDER BY id",
                (last_id - ALERT_ID_MARGIN,),
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
                    app.execute(
                        "UPDATE calls SET status = 'ended', session_outcome = %s,"
                        " updated_at = now() WHERE id = %s",
                        (OUTCOME[kind], call),
                    )
                scenario.committed[call] = (kind, time.time())
                scenario.writes += 1
            except psycopg.Error:
                scenario.write_errors += 1


def _start_guard(url: str, command: list[str]) -> subprocess.Popen[bytes] | None:
    if not command:
        return None
    guard = shutil.which("guard") or str(Path(sys.executable).with_name("guard"))
    return subprocess.Popen(
        [guard, "--database-url", url, *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_guard(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        process.terminate()
        process.wait(timeout=30)


def _kpi_measure(url: str, scenario: Scenario) -> None:
    """guard.kpis' measure of each alert: first_seen_at - the row's last write (written_at)."""
    calls = list(scenario.committed)
    with psycopg.connect(url, autocommit=True) as conn:
        has_written = conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'guard.alerts'::regclass"
            " AND attname = 'written_at' AND NOT attisdropped"
        ).fetchone()
        since = "written_at" if has_written and has_written[0] else "observed_at"
        rows = conn.execute(
            "SELECT check_id, entity_id, extract(EPOCH FROM first_seen_at"
            f" - coalesce({since}, observed_at))::float8 FROM guard.alerts"  # fixed text
            " WHERE entity_type = 'call' AND entity_id = ANY(%s)",
            (calls,),
        ).fetchall()
    for check_id, entity_id, seconds in rows:
        if seconds is not None:
            scenario.kpi[(str(check_id), int(entity_id))] = float(seconds)


def run_scenario(
    url: str,
    name: str,
    command: list[str],
    minutes: float,
    rate: float,
    grace_s: float,
    log: Any,
) -> Scenario:
    """command: the `guard` arguments of a process running beside pg_cron (none: pg_cron only)."""
    scenario = Scenario(name, watched=command == WATCH)
    stop = threading.Event()
    listener = threading.Thread(target=_listen, args=(url, scenario, stop), daemon=True)
    listener.start()
    process = _start_guard(url, command)
    try:
        log(f"{name}: writing {rate:.1f} calls/s for {minutes:g} min")
        _write(url, scenario, rate, minutes * 60, random.Random(7))
        # the last phantoms' grace period, then the fallback's schedule (a minute, before)
        wait_s = grace_s + 90
        log(f"{name}: waiting up to {wait_s:.0f} s for the last alerts")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and len(_missing(scenario)) > 0:
            time.sleep(1)
    finally:
        stop.set()
        listener.join(timeout=10)
        _stop_guard(process)
    _kpi_measure(url, scenario)
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
        calls = [c for c, (k, _) in scenario.committed.items() if k == kind]
        latencies = [
            scenario.seen[(check, c)] - scenario.committed[c][1]
            for c in calls
            if (check, c) in scenario.seen
        ]
        kpi = [scenario.kpi[(check, c)] for c in calls if (check, c) in scenario.kpi]
        target = TARGETS[scenario.watched][kind]
        p95, worst = _quantile(latencies, 0.95), max(latencies, default=None)
        unseen = len(calls) - len(latencies)
        out.append(
            {
                "scenario": scenario.name,
                "kind": kind,
                "check": check,
                "written": len(calls),
                "alerted": len(latencies),
                "p50_s": statistics.median(latencies) if latencies else None,
                "p95_s": p95,
                "max_s": worst,
                "kpi_p95_s": _quantile(kpi, 0.95),
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


def _prepare_flood(url: str, total: int, prefix: str) -> tuple[list[str], int, int, str]:
    """The calls the flood ends, created now, and each one's outcome in a table the loop reads;
    the kinds in call order, the first and last call, the queue's sequence."""
    rng = random.Random(11)
    kinds = rng.choices([k for k, _ in FLOOD_MIX], [w for _, w in FLOOD_MIX], k=total)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "WITH made AS (INSERT INTO calls (company_id, retell_call_id, direction,"
            " customer_link_status, status) SELECT 1 + g %% %s, %s || g, 'inbound',"
            " 'unlinked', 'ongoing' FROM generate_series(1, %s) AS g RETURNING id)"
            " SELECT min(id), max(id) FROM made",
            (COMPANIES, prefix, total),
        ).fetchone()
        assert row is not None
        first, last = int(row[0]), int(row[1])
        assert last - first + 1 == total
        conn.execute(
            "CREATE TABLE public.bench_flood_outcome (call_id bigint PRIMARY KEY, outcome text)"
        )
        with conn.cursor().copy(
            "COPY public.bench_flood_outcome (call_id, outcome) FROM STDIN"
        ) as copy:
            for i, kind in enumerate(kinds):
                copy.write_row((first + i, OUTCOME[kind]))
        seq = conn.execute(
            "SELECT pg_get_serial_sequence('guard.detection_queue', 'id')"
        ).fetchone()
        assert seq is not None
    return kinds, first, last, str(seq[0])


def flood(
    url: str, name: str, command: list[str], rate: float, seconds: float, grace_s: float, log: Any
) -> dict[str, Any]:
    """`rate` commits a second for `seconds`, each ending a call created beforehand, with pg_cron
    and the `guard` process of `command` (none: pg_cron alone) draining; the queue sampled every
    second."""
    total = int(rate * seconds)
    kinds, first, last, seq = _prepare_flood(url, total, f"flood-{len(command)}-{time.time_ns()}-")
    scenario = Scenario(name, watched=command == WATCH)
    stop = threading.Event()
    listener = threading.Thread(target=_listen, args=(url, scenario, stop), daemon=True)
    listener.start()
    samples: list[tuple[float, int, int, int]] = []  # when, queued so far, present, due

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    f"SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}),"
                    " count(*), count(*) FILTER (WHERE due_at <= now())"
                    " FROM guard.detection_queue"
                ).fetchone()
                assert row is not None
                samples.append((time.time(), int(row[0]), int(row[1]), int(row[2])))
                time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    process = _start_guard(url, command)
    try:
        time.sleep(3)  # the watcher is listening
        sampler.start()
        log(f"flood, {name}: {total} commits at {rate:g}/s")
        began = time.time()
        with psycopg.connect(url, autocommit=True, application_name="bench-flood") as app:
            app.execute(
                f"""
                DO $flood$
                DECLARE
                    started timestamptz := clock_timestamp();
                    o record;
                    i integer := 0;
                BEGIN
                    FOR o IN
                        SELECT call_id, outcome FROM public.bench_flood_outcome ORDER BY call_id
                    LOOP
                        UPDATE calls SET status = 'ended', session_outcome = o.outcome,
                            updated_at = clock_timestamp()
                        WHERE id = o.call_id;
                        COMMIT;
                        i := i + 1;
                        IF i % 50 = 0 THEN
                            PERFORM pg_sleep_until(started + make_interval(secs => i / {rate:f}));
                        END IF;
                    END LOOP;
                END
                $flood$
                """.encode()
            )
        ended = time.time()
        for i, kind in enumerate(kinds):
            scenario.committed[first + i] = (kind, 0.0)  # the commit time is read below
        log(f"flood, {name}: {total / (ended - began):.0f} commits/s; waiting for the queue")
        deadline = ended + grace_s + 600
        while time.time() < deadline:
            if (
                samples
                and samples[-1][0] > ended
                and samples[-1][2] == 0
                and not _missing(scenario)
            ):
                break
            time.sleep(1)
    finally:
        stop.set()
        listener.join(timeout=10)
        sampler.join(timeout=10)
        _stop_guard(process)
    with psycopg.connect(url, autocommit=True) as conn:
        # each commit's time: the call's last write (clock_timestamp() in its transaction)
        for call_id, when in conn.execute(
            "SELECT id, extract(EPOCH FROM updated_at)::float8 FROM calls"
            " WHERE id BETWEEN %s AND %s",
            (first, last),
        ).fetchall():
            kind = scenario.committed[int(call_id)][0]
            scenario.committed[int(call_id)] = (kind, float(when))
        conn.execute("DROP TABLE public.bench_flood_outcome")
    return {"scenario": name, **_flood_figures(scenario, samples, total, began, ended)}


def _flood_figures(
    scenario: Scenario,
    samples: list[tuple[float, int, int, int]],
    total: int,
    began: float,
    ended: float,
) -> dict[str, Any]:
    during = [s for s in samples if began <= s[0] <= ended]
    checked = [s[1] - s[2] for s in samples]  # queued so far minus still there
    after_ended = [s for s in samples if s[0] > ended]
    empty_at = next((s[0] for s in after_ended if s[3] == 0), None)
    rate_checked = None
    if len(during) >= 2:
        first_s, last_s = during[0], during[-1]
        rate_checked = ((last_s[1] - last_s[2]) - (first_s[1] - first_s[2])) / (
            last_s[0] - first_s[0]
        )
    phantoms = [
        scenario.seen[(ALERT_OF["phantom"], c)] - when
        for c, (k, when) in scenario.committed.items()
        if k == "phantom" and (ALERT_OF["phantom"], c) in scenario.seen
    ]
    last_alert = max(scenario.seen.values(), default=None)
    return {
        "commits": total,
        "seconds": ended - began,
        "commits_per_s": total / (ended - began),
        "checked_per_s_during": rate_checked,
        "checked_total": max(checked, default=0),
        "max_due_backlog": max((s[3] for s in samples), default=0),
        "due_empty_after_end_s": None if empty_at is None else empty_at - ended,
        "phantoms": sum(1 for k, _ in scenario.committed.values() if k == "phantom"),
        "phantoms_alerted": len(phantoms),
        "phantom_p50_s": statistics.median(phantoms) if phantoms else None,
        "phantom_max_s": max(phantoms, default=None),
        "last_alert_after_end_s": None if last_alert is None else last_alert - ended,
        "unseen": len(_missing(scenario)),
    }


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
    print(
        "| scenario | problem | written | alerted | p50 s | p95 s | max s | KPI p95 s |"
        " target (p95, max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['kind']} ({r['check']}) | {r['written']} | {r['alerted']} |"
            f" {_fmt(r['p50_s'])} | {_fmt(r['p95_s'])} | {_fmt(r['max_s'])} |"
            f" {_fmt(r['kpi_p95_s'])} | <= {r['target_s']:g} s: {'PASS' if r['met'] else 'FAIL'} |"
        )
    for name, scenario in header["scenarios"].items():
        print(f"  {name}: {scenario['writes']} calls ended, {scenario['write_errors']} errors")
    floods = header.get("floods") or []
    if floods:
        print()
        print(f"Flood: {floods[0]['commits']} commits, one call ended each")
        print()
        print(
            "| drained by | commits/s | calls checked/s during | most due waiting |"
            " due queue empty after end s | phantoms alerted | phantom p50 s | phantom max s |"
            " last alert after end s | unseen |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for f in floods:
            print(
                f"| {f['scenario']} | {f['commits_per_s']:.0f} |"
                f" {_fmt(f['checked_per_s_during'])} |"
                f" {f['max_due_backlog']} | {_fmt(f['due_empty_after_end_s'])} |"
                f" {f['phantoms_alerted']} of {f['phantoms']} | {_fmt(f['phantom_p50_s'])} |"
                f" {_fmt(f['phantom_max_s'])} | {_fmt(f['last_alert_after_end_s'])} |"
                f" {f['unseen']} |"
            )


def _set_up(url: str, cron: bool) -> tuple[float, Any, Any, bool]:
    """guard db apply and the companies; the grace period, pg_cron's version, the two
    detection jobs as pg_cron has them, and whether it has minutes only."""
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
        minutes_only = bool(
            cron
            and conn.execute("SELECT guard.cron_schedule('15 seconds') <> '15 seconds'").fetchone()
            == (True,)
        )
    return grace_s, version, jobs, minutes_only


def _floods(
    url: str, args: argparse.Namespace, minutes_only: bool, grace_s: float, log: Any
) -> list[dict[str, Any]]:
    """The floods asked for; on a pg_cron before 1.5, with --flood-cron, once more with the
    minute's run as it was before a run that took a whole batch was followed at once by the
    next (every 15 s only)."""
    runs: list[tuple[str, list[str], bool]] = [
        ("guard watch + pg_cron", WATCH, False),
        ("pg_cron alone", [], False),
    ]
    if minutes_only:
        runs.append(("pg_cron alone, one batch a turn (before)", [], True))
    floods = []
    for name, command, one_batch in runs:
        if not args.flood or not (command or args.flood_cron):
            continue
        if one_batch:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "SELECT cron.schedule('guard_detect_queue', '* * * * *', replace("
                    "guard.cron_command('detect_queue', '15 seconds'),"
                    " ' CONTINUE WHEN again;', ''))"
                )
        try:
            floods.append(flood(url, name, command, args.flood, args.flood_seconds, grace_s, log))
        finally:
            if one_batch:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("SELECT guard.schedule_jobs()")
    return floods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="writing time per scenario")
    parser.add_argument("--rate", type=float, default=RATE, help="calls a second")
    parser.add_argument(
        "--jobs-run", action="store_true", help="also the external runner, no watcher"
    )
    parser.add_argument("--flood", type=float, default=2000.0, help="commits a second; 0: none")
    parser.add_argument("--flood-seconds", type=float, default=20.0, help="how long the flood")
    parser.add_argument(
        "--flood-cron", action="store_true", help="a second flood, drained by pg_cron alone"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    progress("starting a throwaway cluster")
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
        progress("guard db apply")
        grace_s, version, jobs, minutes_only = _set_up(url, cron)
        runs: list[tuple[str, list[str], bool]] = [
            ("guard watch + pg_cron", WATCH, False),
            ("pg_cron alone", [], False),
        ]
        if minutes_only:
            runs.append(("pg_cron alone, one run a minute (before)", [], True))
        if args.jobs_run:
            runs.append(
                (
                    "guard jobs run (detect_queue) + pg_cron",
                    ["jobs", "run", "--job", "detect_queue"],
                    False,
                )
            )
        scenarios = []
        for name, command, once_a_minute in runs:
            if once_a_minute:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(
                        "SELECT cron.schedule('guard_detect_queue', '* * * * *',"
                        " guard.job_command('detect_queue'))"
                    )
            try:
                scenarios.append(
                    run_scenario(url, name, command, args.minutes, args.rate, grace_s, progress)
                )
            finally:
                if once_a_minute:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute("SELECT guard.schedule_jobs()")
        floods = _floods(url, args, minutes_only, grace_s, progress)
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
        "floods": floods,
    }
    print_report(args.json, {"header": header, "rows": rows}, lambda: print_tables(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
