"""Every `guard` command against a hot standby (a real streaming replica, `pg_is_in_recovery()`):
each either does its work (it only reads) or ends in the one standby line and exit 1, never a
traceback nor "a bug"; `guard metrics` reports `guard_up 0` and `guard_in_recovery 1` there; a
report of a day not stored is computed without storing; `guard jobs run` (the loop) waits for a
primary instead of exiting."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from guard.resources import migrations_dir
from tests.cli.commands import CIRCUIT, NOT_WALKED, command_lines, leaves
from tests.security.conftest import LOGINS, SEED, create_logins
from tests.support.pg_node import PgNode, migrated_pair
from tests.support.queries import fetch_one
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

DATABASE = "guard_standby"
GUARD = [sys.executable, "-m", "guard.cli"]
STANDBY_LINE = re.compile(
    r"^guard: error: 127\.0\.0\.1:\d+/guard_standby is a read-only standby \(in recovery\):"
    r" `guard [a-z -]+` writes; run it against the primary$"
)
# What only reads, and so works on a standby (exit 0, or 1 for a finding it reports).
READS = {
    "alerts list",
    "alerts show",
    "alerts test",  # uses no database at all
    "breaker list",
    "breaker show",
    "db apply --dry-run",  # walked twice: with --dry-run it only reads, without it writes
    "db status",
    "db verify",
    "review list",
    "review show",
    "tenant list",
    "jobs status",
    "report",
    "reconcile",  # walked with --dry-run
    "rules list",
    "rules show",
}


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[PgNode, PgNode]]:

    def seed(url: str) -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            create_logins(admin, {login: kind for kind, login in LOGINS.items()})
            admin.execute(SEED.encode())

    with migrated_pair(DATABASE, "booking_guard_standby_commands", seed=seed) as pair:
        yield pair


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _guard(url: str, redis_url: str, *args: str, timeout: float = 120) -> Any:
    return subprocess.run(
        [*GUARD, "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "GUARD_REDIS_URL": redis_url, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def _counts(url: str) -> tuple[Any, ...]:
    row = fetch_one(
        url,
        "SELECT (SELECT count(*) FROM guard.alerts), (SELECT count(*) FROM guard.job_runs),"
        " (SELECT count(*) FROM guard.daily_reports),"
        " (SELECT count(*) FROM guard.review_items WHERE status = 'open'),"
        " (SELECT count(*) FROM guard.tenant_bindings)",
    )
    assert row is not None
    return tuple(row)


def _judge(path: str, done: Any, errors: list[str]) -> tuple[str, list[str]]:
    """("worked" | "refused", the problems found) for one command's run on the standby."""
    err: str = done.stderr
    problems: list[str] = []
    if "Traceback" in err or "Traceback" in done.stdout:
        problems.append(f"{path}: a traceback:\n{err[-2000:]}")
    if "please report it" in err or "unexpected " in err:
        problems.append(f"{path}: reported as a bug: {err.strip()}")
    if path in READS:
        if errors:
            problems.append(f"{path}: a read failed on the standby: {errors}")
        return "worked", problems
    if path == "metrics":
        # reads, but is not meant for a standby: guard_up 0, and exit 1 with one line
        if "\nguard_up 0.0" not in "\n" + done.stdout:
            problems.append("metrics: guard_up is not 0 on a standby")
        if "\nguard_in_recovery 1.0" not in "\n" + done.stdout:
            problems.append("metrics: no guard_in_recovery 1 on a standby")
        if done.returncode != 1 or len(errors) != 1 or "read-only standby" not in errors[0]:
            problems.append(f"metrics: not one standby line and exit 1: {err!r}")
        return "refused", problems
    if done.returncode != 1 or len(errors) != 1 or not STANDBY_LINE.match(errors[0]):
        problems.append(f"{path}: not the standby line and exit 1: {done.returncode} {err!r}")
    elif f"`guard {path}` writes" not in errors[0]:
        problems.append(f"{path}: the line names another command: {errors[0]}")
    return "refused", problems


def test_every_command_on_a_standby_works_or_says_it_is_a_standby(
    nodes: tuple[PgNode, PgNode], redis_url: str
) -> None:
    primary, standby = nodes
    url = standby.url(DATABASE)
    lines = command_lines(url, LOGINS["owner"])
    assert {path for path, _ in lines} | set(NOT_WALKED) == set(leaves())
    # the circuit the walk shows exists (created where circuits are created: the primary)
    created = _guard(
        primary.url(DATABASE), redis_url, "breaker", "trip", CIRCUIT, "--reason", "r", "--create"
    )
    assert created.returncode == 0, created.stderr
    standby.wait_for_replay_of(primary)
    before = _counts(primary.url(DATABASE))
    outcomes: dict[str, str] = {}
    problems: list[str] = []
    judged = {"worked": 0, "refused": 0}
    started = time.monotonic()
    for path, args in lines:
        done = _guard(url, redis_url, *path.split(), *args)
        errors = [line for line in done.stderr.splitlines() if line.startswith("guard: error:")]
        label = f"{path} --dry-run" if path == "db apply" and "--dry-run" in args else path
        outcomes[label] = f"exit {done.returncode}" + (f": {errors[-1][:140]}" if errors else "")
        verdict, found = _judge(label, done, errors)
        problems += found
        judged[verdict] += not found
    elapsed = time.monotonic() - started
    report = "\n".join(f"{k}: {v}" for k, v in outcomes.items())
    assert not problems, "\n".join(problems) + "\n" + report
    worked, refused = judged["worked"], judged["refused"]
    print(f"\nstandby walk: {worked} worked, {refused} one standby line, {elapsed:.1f} s\n{report}")
    assert worked == len(READS)
    assert refused == len(lines) - len(READS)
    # nothing reached the primary either (the standby wrote nothing it could replicate back)
    assert _counts(primary.url(DATABASE)) == before


def test_report_of_a_day_not_stored_is_computed_without_storing_on_a_standby(
    nodes: tuple[PgNode, PgNode], redis_url: str
) -> None:
    primary, standby = nodes
    url = standby.url(DATABASE)
    with psycopg.connect(primary.url(DATABASE), autocommit=True) as conn:
        (yesterday,) = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date - 1").fetchone() or (
            None,
        )
    done = _guard(url, redis_url, "report", "--date", str(yesterday), "--json")
    assert done.returncode == 0, done.stderr
    assert '"stored": false' in done.stdout
    assert "standby" in done.stderr and "not stored" in done.stderr
    # the same figures as the primary computes (and stores) for the day
    on_standby = _guard(url, redis_url, "report", "--date", str(yesterday))
    computed = _guard(primary.url(DATABASE), redis_url, "report", "--date", str(yesterday))
    assert computed.returncode == on_standby.returncode == 0, computed.stderr + on_standby.stderr
    assert _without_times(on_standby.stdout) == _without_times(computed.stdout)


def _without_times(text: str) -> str:
    return re.sub(r"\d{4}-\d{2}-\d{2}[ T][\d:.+Z]+", "TIME", text)


def test_jobs_run_waits_for_a_primary_on_a_standby(
    nodes: tuple[PgNode, PgNode], redis_url: str, tmp_path: Path
) -> None:
    _, standby = nodes
    log = tmp_path / "jobs.err"
    with log.open("w") as err_file:
        process = subprocess.Popen(
            [*GUARD, "--database-url", standby.url(DATABASE), "jobs", "run", "--job", "detect"],
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            text=True,
        )

    def retries() -> int:
        return log.read_text().count("retrying in")

    try:
        # attempts at 0, 1 and 3 s (backoff 1 s, 2 s) from the first, which a slow start delays
        # (a loaded machine took 3 s to import the command): waited for, not a fixed time
        deadline = time.monotonic() + 60
        while retries() < 3 and time.monotonic() < deadline:
            assert process.poll() is None, "guard jobs run exited on a standby"
            time.sleep(0.1)
        assert process.poll() is None, "guard jobs run exited on a standby"
    finally:
        process.terminate()
        process.wait(timeout=20)
    err = log.read_text()
    warnings = [line for line in err.splitlines() if line.startswith("guard: warning:")]
    assert len(warnings) >= 2, err
    assert all("is a read-only standby (in recovery)" in w for w in warnings), err
    assert "retrying in 1.0 s" in warnings[0] and "retrying in 2.0 s" in warnings[1], err
    assert "Traceback" not in err


def test_watch_waits_for_a_primary_on_a_standby_and_says_why(
    nodes: tuple[PgNode, PgNode], redis_url: str, tmp_path: Path
) -> None:
    _, standby = nodes
    log = tmp_path / "watch.err"
    with log.open("w") as err_file:
        process = subprocess.Popen(
            [*GUARD, "--database-url", standby.url(DATABASE), "watch", "--channel", "stdout"],
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            text=True,
        )

    def read_only() -> list[str]:
        return [
            line for line in log.read_text().splitlines() if "the database is read-only" in line
        ]

    try:
        # attempts 1 s and 3 s after the first (backoff 1 s, 2 s); a slow start delays the first
        deadline = time.monotonic() + 60
        while len(read_only()) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, "guard watch exited on a standby"
            time.sleep(0.1)
        assert process.poll() is None, "guard watch exited on a standby"
    finally:
        process.terminate()
        process.wait(timeout=20)
    err = log.read_text()
    assert len(read_only()) >= 2, err
    assert "retrying in 1.0 s" in read_only()[0] and "retrying in 2.0 s" in read_only()[1], err
    assert "Traceback" not in err and "a bug" not in err


def test_verify_gives_the_primarys_answer_on_a_standby(
    nodes: tuple[PgNode, PgNode], redis_url: str
) -> None:
    """verify only reads, so a standby answers as its primary does: clean, and nothing pending
    that it could not compare."""
    primary, standby = nodes
    standby.wait_for_replay_of(primary)
    on_primary = _guard(primary.url(DATABASE), redis_url, "db", "verify")
    on_standby = _guard(standby.url(DATABASE), redis_url, "db", "verify")
    assert on_primary.returncode == 0, on_primary.stdout + on_primary.stderr
    assert on_standby.returncode == 0, on_standby.stdout + on_standby.stderr
    assert "could not compare" not in on_standby.stdout + on_standby.stderr


def test_apply_dry_run_plans_on_a_standby_and_apply_is_refused(
    nodes: tuple[PgNode, PgNode], redis_url: str, tmp_path: Path
) -> None:
    """Issue 71: `guard db apply --dry-run` was refused on a standby as "writes". A dry run
    writes nothing (one READ ONLY transaction), so it plans there: a migration pending on the
    standby is printed; the apply itself is still refused with the standby line."""
    primary, standby = nodes
    standby.wait_for_replay_of(primary)
    pending = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), pending)
    (pending / "9999_standby_dry_run.sql").write_text(
        "-- a pending migration (never applied)\nCREATE TABLE guard.standby_dry_run (id int);\n"
    )
    (pending / "9999_standby_dry_run.rollback.sql").write_text(
        "DROP TABLE guard.standby_dry_run;\n"
    )
    url = standby.url(DATABASE)
    dry = _guard(url, redis_url, "db", "apply", "--dry-run", "--migrations-dir", str(pending))
    assert dry.returncode == 0, dry.stderr
    assert "-- migration 9999_standby_dry_run" in dry.stdout
    assert "CREATE TABLE guard.standby_dry_run" in dry.stdout
    assert "Traceback" not in dry.stderr and "guard: error" not in dry.stderr
    applied = _guard(url, redis_url, "db", "apply", "--migrations-dir", str(pending))
    errors = [line for line in applied.stderr.splitlines() if line.startswith("guard: error:")]
    assert applied.returncode == 1 and len(errors) == 1 and STANDBY_LINE.match(errors[0]), (
        applied.stderr
    )
