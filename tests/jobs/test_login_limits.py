"""`guard jobs run` within its login's lock_timeout (docs/jobs.md, "What every run does"):
another session holds a lock a run needs; the login's lock_timeout ends each wait after 100 ms,
and the run is tried again until the lock is free, instead of ending the command."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner

from guard.cli import main
from tests.support.locks import lock_held
from tests.support.logins import owner_login

LOGIN = "jobs_lock_login"


def _login(db_url: str, **settings: str) -> str:
    return owner_login(db_url, LOGIN, **settings)


def test_a_run_lock_timeout_ended_is_tried_again(db_url: str) -> None:
    url = _login(db_url, lock_timeout="100ms")
    with lock_held(db_url, "LOCK TABLE guard.job_runs IN SHARE ROW EXCLUSIVE MODE", 1.0):
        result = CliRunner().invoke(
            main, ["--database-url", url, "jobs", "run", "--once", "--job", "daily_report"]
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("daily_report: succeeded"), result.output
    with psycopg.connect(db_url) as conn:
        runs = conn.execute("SELECT status FROM guard.job_runs WHERE job_name = 'daily_report'")
        assert runs.fetchall() == [("succeeded",)]
