"""Jobs from outside the database: the advisory lock makes a concurrent second run a no-op, and
`guard jobs run --once` / `guard jobs status --json` report what guard.run_job recorded."""

from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from guard.cli import main


def test_a_concurrent_second_run_is_a_no_op(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as first,
        psycopg.connect(db_url, autocommit=True) as second,
    ):
        with first.transaction():
            row = first.execute("SELECT guard.run_job('daily_report')").fetchone()
            assert row is not None and row[0].startswith("daily_report: succeeded")
            # the first run's transaction is still open: its lock is held
            busy = second.execute("SELECT guard.run_job('daily_report')").fetchone()
            assert busy == ("daily_report: skipped, already running in another session",)
            other = second.execute("SELECT guard.run_job('retention')").fetchone()
            assert other is not None and other[0].startswith("retention: succeeded"), (
                "the lock is per job"
            )
        count = first.execute(
            "SELECT count(*) FROM guard.job_runs WHERE job_name = 'daily_report'"
        ).fetchone()
        assert count == (1,), "the skipped run left no heartbeat"
        again = second.execute("SELECT guard.run_job('daily_report')").fetchone()
        assert again is not None and again[0].startswith("daily_report: succeeded"), (
            "the lock ends with the first run's transaction"
        )


def test_jobs_run_once_and_status(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--database-url", db_url, "jobs", "run", "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "daily_report",
        "detect",
        "reconcile",
        "retention",
        "review_sweep",
    ]
    assert all(": succeeded in " in line for line in lines), result.output

    status = runner.invoke(main, ["--database-url", db_url, "jobs", "status", "--json"])
    assert status.exit_code == 0, status.output
    jobs = {job["job_name"]: job for job in json.loads(status.output)}
    assert set(jobs) == {"daily_report", "detect", "reconcile", "retention", "review_sweep"}
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
    with psycopg.connect(db_url) as conn:
        alert = conn.execute(
            "SELECT check_id, status FROM guard.alerts WHERE fingerprint = 'job_failed:job:broken'"
        ).fetchone()
    assert alert == ("job_failed", "open"), "the failure outlived the failed run's rollback"

    unknown = runner.invoke(main, ["--database-url", db_url, "jobs", "run", "--once", "--job", "x"])
    assert unknown.exit_code == 1
    assert "unknown job(s): x" in unknown.output
