"""Jobs from outside the database: the advisory lock makes a concurrent second run a no-op,
different jobs never wait for each other (not even on the heartbeat check's shared job_missed
alerts), and `guard jobs run --once` / `guard jobs status --json` report what guard.run_job
recorded. Concurrency is tested with real commits from two connections; pgTAP cannot (one
session, and a transaction-level advisory lock is re-entrant within it)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from click.testing import CliRunner

from guard.cli import main
from tests.support.queries import fetch_one

Connection = psycopg.Connection[Any]


# The jobs Booking Guard ships (sql/data/guard.jobs.sql), by name.
SHIPPED_JOBS = [
    "daily_report",
    "detect",
    "detect_queue",
    "reconcile",
    "retention",
    "review_sweep",
    "sweep",
]


@contextmanager
def two_sessions(db_url: str) -> Iterator[tuple[Connection, Connection]]:
    """Two autocommit connections; the second gives up on a lock or a statement after timeouts
    long enough for a loaded 2-core machine to run a job on an empty database, far shorter than
    pytest's timeout: a run that waits for the first one's lock fails instead of hanging."""
    with (
        psycopg.connect(db_url, autocommit=True) as first,
        psycopg.connect(db_url, autocommit=True) as second,
    ):
        second.execute("SET lock_timeout = '2s'")
        second.execute("SET statement_timeout = '20s'")
        yield first, second


def run_job(conn: Connection, job: str) -> str:
    """guard.run_job's answer: `JOB: succeeded ...`, `JOB: skipped, ...`."""
    row = conn.execute("SELECT guard.run_job(%s)", (job,)).fetchone()
    assert row is not None
    return str(row[0])


def restart_grace_periods(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """No job is overdue now, however long ago the template database was built: a job that never
    succeeded is overdue twice its interval after its last change, and this is a change."""
    conn.execute("UPDATE guard.jobs SET enabled = enabled")


def add_overdue_job(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """An enabled job whose last success is a day old: overdue, the honest way (its heartbeat and
    its last change are both in the past)."""
    conn.execute(
        "INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description,"
        " updated_at) VALUES (%s, '* * * * *', 60, 'SELECT 1', 'overdue test job',"
        " now() - interval '2 days')",
        (name,),
    )
    conn.execute(
        "INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, duration_ms)"
        " VALUES (%s, now() - interval '1 day', now() - interval '1 day', 'succeeded', 1)",
        (name,),
    )
    overdue = conn.execute(
        "SELECT overdue FROM guard.job_status WHERE job_name = %s", (name,)
    ).fetchone()
    assert overdue == (True,)


def test_different_jobs_never_wait_for_each_other_while_a_job_is_overdue(db_url: str) -> None:
    """Every ordered pair of different jobs: the first run's transaction stays open (as a slow
    job's would) while the second runs. Both end with the missed-run check, which finds the
    overdue job; the second must finish at once, and the overdue job has one open alert."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        restart_grace_periods(setup)
        add_overdue_job(setup, "stale")
        jobs = [
            str(row[0])
            for row in setup.execute(
                "SELECT name FROM guard.jobs WHERE name <> 'stale' ORDER BY name"
            ).fetchall()
        ]
    assert len(jobs) >= 5, jobs
    waited: list[str] = []
    with two_sessions(db_url) as (first, second):
        for first_job, second_job in itertools.permutations(jobs, 2):
            with first.transaction():
                ran = run_job(first, first_job)
                assert ran.startswith(f"{first_job}: succeeded"), ran
                try:
                    other = run_job(second, second_job)
                except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as error:
                    where = (error.diag.context or "").splitlines()[:1]
                    waited.append(
                        f"{second_job} behind {first_job}: {error.diag.message_primary} {where}"
                    )
                    continue
                assert other.startswith(f"{second_job}: succeeded"), (first_job, other)
            alerts = first.execute(
                "SELECT status, count(*) FROM guard.alerts"
                " WHERE fingerprint = 'job_missed:job:stale' GROUP BY status"
            ).fetchall()
            assert alerts == [("open", 1)], (first_job, second_job, alerts)
        assert waited == [], "runs waited for another job's open transaction:\n" + "\n".join(waited)
        missed = first.execute(
            "SELECT details ->> 'job' FROM guard.alerts"
            " WHERE check_id = 'job_missed' AND status = 'open'"
        ).fetchall()
        assert missed == [("stale",)], "only the overdue job is missed"


def test_a_concurrent_second_run_is_a_no_op(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as setup:
        # The test's own clock, not the template's: with no job overdue, no run here raises a
        # job_missed alert, whenever in the session this test runs.
        restart_grace_periods(setup)
    with two_sessions(db_url) as (first, second):
        with first.transaction():
            assert run_job(first, "daily_report").startswith("daily_report: succeeded")
            # the first run's transaction is still open: its lock is held
            busy = run_job(second, "daily_report")
            assert busy == "daily_report: skipped, already running in another session"
            other = run_job(second, "retention")
            assert other.startswith("retention: succeeded"), "the lock is per job"
        count = first.execute(
            "SELECT count(*) FROM guard.job_runs WHERE job_name = 'daily_report'"
        ).fetchone()
        assert count == (1,), "the skipped run left no heartbeat"
        again = run_job(second, "daily_report")
        assert again.startswith("daily_report: succeeded"), (
            "the lock ends with the first run's transaction"
        )
        missed = first.execute(
            "SELECT count(*) FROM guard.alerts WHERE check_id = 'job_missed'"
        ).fetchone()
        assert missed == (0,), "no job was overdue"


def test_a_check_in_progress_elsewhere_is_skipped_and_the_next_one_catches_up(
    db_url: str,
) -> None:
    """The price of never waiting: the overdue job's own run, while another job's run holds the
    heartbeat check's lock, skips its check, and the other check could not see its success. The
    job_missed alert it leaves open is resolved by the next check, and it is one alert."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        restart_grace_periods(setup)
        add_overdue_job(setup, "stale")
    with two_sessions(db_url) as (first, second):
        with first.transaction():
            ran = run_job(first, "detect")
            assert ran.startswith("detect: succeeded"), ran
            skipped = second.execute("SELECT guard.check_job_heartbeats()").fetchone()
            assert skipped == (None,), "NULL: another session's check holds the lock"
            late = run_job(second, "stale")
            assert late.startswith("stale: succeeded"), late
            stale_status = second.execute(
                "SELECT overdue FROM guard.job_status WHERE job_name = 'stale'"
            ).fetchone()
            assert stale_status == (False,)
        left_open = first.execute(
            "SELECT status FROM guard.alerts WHERE fingerprint = 'job_missed:job:stale'"
        ).fetchall()
        assert left_open == [("open",)], "the first check did not see the late job's success"
        assert run_job(second, "review_sweep").startswith("review_sweep: succeeded")
        alerts = first.execute(
            "SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'job_missed:job:stale'"
        ).fetchall()
        assert alerts == [("resolved", "fixed")], "the next check resolves it"


def test_jobs_run_once_and_status(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--database-url", db_url, "jobs", "run", "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == SHIPPED_JOBS
    assert all(": succeeded in " in line for line in lines), result.output

    status = runner.invoke(main, ["--database-url", db_url, "jobs", "status", "--json"])
    assert status.exit_code == 0, status.output
    jobs = {job["job_name"]: job for job in json.loads(status.output)}
    assert sorted(jobs) == SHIPPED_JOBS
    for job in jobs.values():
        assert job["last_status"] == "succeeded"
        assert job["last_success_at"] is not None
        assert job["overdue"] is False
        assert job["pg_cron"] == "not installed"

    table = runner.invoke(main, ["--database-url", db_url, "jobs", "status"])
    assert table.exit_code == 0, table.output
    assert "detect" in table.output


def test_jobs_run_once_fails_when_a_job_fails(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description)"
            " VALUES ('broken', '* * * * *', 60, 'SELECT 1 / 0', 'fails')"
        )
    runner = CliRunner()
    result = runner.invoke(
        main, ["--database-url", db_url, "jobs", "run", "--once", "--job", "broken"]
    )
    assert result.exit_code == 1
    assert "broken: failed after" in result.output and "division by zero" in result.output
    alert = fetch_one(
        db_url,
        "SELECT check_id, status FROM guard.alerts WHERE fingerprint = 'job_failed:job:broken'",
    )
    assert alert == ("job_failed", "open"), "the failure outlived the failed run's rollback"

    unknown = runner.invoke(main, ["--database-url", db_url, "jobs", "run", "--once", "--job", "x"])
    assert unknown.exit_code == 1
    assert "unknown job(s): x" in unknown.output
