"""Jobs are independent (docs/jobs.md, "What every run does"): one job's failure, a timeout or a
permission, is recorded as that job's failure in guard.job_runs, and the other jobs still run,
in `guard jobs run --once`, in the loop, and under pg_cron's `guard.run_job`.

The jobs login has a statement_timeout of 1 s, as a DBA may give it (short, yet long enough that
the shipped jobs finish within it on a loaded machine). Each job in turn is the
victim of one hostile condition, generated over every job rather than picked by hand:
- its run is recorded late: the heartbeat row takes longer than what is left of the statement's
  1 s (a slow disk, a lock), so the timer fires outside the job's own sub-transaction;
- its recording is refused once (a permission failure outside the job's sub-transaction);
- its command runs longer than the timeout, or reads a table the login may not read (inside
  the sub-transaction: these were recorded before too).
Both are made by a trigger of the test's own on guard.job_runs (SECURITY DEFINER, so that only
what it is told to do fails)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from guard.cli import main
from tests.support.queries import fetch_all

JOBS_LOGIN = "jobs_with_timeout"
JOBS = ["daily_report", "detect", "detect_queue", "reconcile", "retention", "review_sweep", "sweep"]
# outside the job's sub-transaction (lost before), inside it (recorded before as well)
OUTSIDE = ("recorded_late", "recording_refused_once")
INSIDE = ("command_too_slow", "command_refused")

_HOSTILE = """
CREATE TABLE public.hostile (job text NOT NULL, kind text NOT NULL);
CREATE SEQUENCE public.hostile_once;
CREATE TABLE public.secret (x int);
CREATE FUNCTION public.hostile_record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $$
DECLARE
    wanted text;
BEGIN
    SELECT h.kind INTO wanted FROM public.hostile AS h WHERE h.job = NEW.job_name;
    IF wanted IN ('recorded_late', 'recording_refused_once') THEN
        IF nextval('public.hostile_once') > 1 THEN
            RETURN NEW;
        ELSIF wanted = 'recorded_late' THEN
            PERFORM pg_sleep(1.5);
        ELSE
            RAISE EXCEPTION 'permission denied for table job_runs'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER hostile_record BEFORE INSERT ON guard.job_runs
FOR EACH ROW EXECUTE FUNCTION public.hostile_record();
"""


def _as(url: str, user: str) -> str:
    return make_conninfo(url, user=user)


@pytest.fixture
def jobs_url(db_url: str) -> Iterator[str]:
    """The jobs login: a member of the owner role with statement_timeout = 1 s (the detect
    job's own timeout, detection_statement_timeout_ms, too), and the hostile trigger."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (JOBS_LOGIN,)).fetchone():
            conn.execute(f"CREATE ROLE {JOBS_LOGIN} LOGIN")
            conn.execute(f"GRANT guard_owner TO {JOBS_LOGIN}")
            conn.execute(f"ALTER ROLE {JOBS_LOGIN} SET statement_timeout = '1s'")
        conn.execute(
            "UPDATE guard.settings SET value = '1000' WHERE key = 'detection_statement_timeout_ms'"
        )
        conn.execute("UPDATE guard.jobs SET enabled = enabled")  # no job overdue
        conn.execute(_HOSTILE)
    yield _as(db_url, JOBS_LOGIN)


def _make_hostile(conn: psycopg.Connection[Any], job: str, kind: str) -> None:
    conn.execute("DELETE FROM public.hostile")
    conn.execute("ALTER SEQUENCE public.hostile_once RESTART")
    conn.execute("INSERT INTO public.hostile VALUES (%s, %s)", (job, kind))
    if kind == "command_too_slow":
        conn.execute("UPDATE guard.jobs SET command = 'SELECT pg_sleep(2)' WHERE name = %s", (job,))
    elif kind == "command_refused":
        conn.execute(
            "UPDATE guard.jobs SET command = 'SELECT count(*) FROM public.secret' WHERE name = %s",
            (job,),
        )


@pytest.mark.slow
@pytest.mark.serial
def test_one_jobs_failure_is_recorded_and_the_others_run(db_url: str, jobs_url: str) -> None:
    cases = [
        *itertools.product(JOBS, OUTSIDE),
        *((job, kind) for kind in INSIDE for job in JOBS[:2]),
    ]
    wrong: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        shipped = {
            str(name): str(command)
            for name, command in conn.execute("SELECT name, command FROM guard.jobs").fetchall()
        }
        for job, kind in cases:
            _make_hostile(conn, job, kind)
            [(since,)] = conn.execute("SELECT clock_timestamp()").fetchall()
            result = CliRunner().invoke(main, ["--database-url", jobs_url, "jobs", "run", "--once"])
            runs = {
                name: (status, error)
                for name, status, error in conn.execute(
                    "SELECT job_name, status, error FROM guard.job_runs WHERE started_at >= %s",
                    (since,),
                ).fetchall()
            }
            conn.execute("UPDATE guard.jobs SET command = %s WHERE name = %s", (shipped[job], job))
            others_ran = all(
                runs.get(other, ("",))[0] == "succeeded" for other in JOBS if other != job
            )
            status, error = runs.get(job, (None, None))
            expected = "succeeded" if kind == "recorded_late" else "failed"
            lines = result.stdout.splitlines()
            if (
                not others_ran
                or status != expected
                or len(lines) != len(JOBS)
                or result.exit_code != (0 if expected == "succeeded" else 1)
                or "Traceback" in result.output
            ):
                wrong.append(f"{job} {kind}: exit {result.exit_code}, runs {runs}, out {lines}")
            elif kind == "recording_refused_once":
                assert "could not run: permission denied" in str(error), error
                alert = conn.execute(
                    "SELECT status FROM guard.alerts WHERE fingerprint = %s AND status = 'open'",
                    (f"job_failed:job:{job}",),
                ).fetchall()
                assert alert == [("open",)], (job, kind)
    assert wrong == [], f"{len(wrong)} of {len(cases)} cases:\n" + "\n".join(wrong)


def test_pg_crons_run_job_records_a_run_its_timeout_caught_while_recording(
    db_url: str, jobs_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _make_hostile(conn, "daily_report", "recorded_late")
    # what pg_cron runs, as the jobs login: one statement under its 1 s
    [(message,)] = fetch_all(jobs_url, "SELECT guard.run_job('daily_report')")
    assert message.startswith("daily_report: succeeded"), message
    runs = fetch_all(db_url, "SELECT status FROM guard.job_runs WHERE job_name = 'daily_report'")
    assert runs == [("succeeded",)]


def test_the_loop_goes_on_after_a_job_could_not_run(db_url: str, jobs_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _make_hostile(conn, "daily_report", "recording_refused_once")
        # refused every time: not even `guard jobs run` can record it
        conn.execute("ALTER SEQUENCE public.hostile_once RESTART")
        conn.execute(
            "CREATE OR REPLACE FUNCTION public.hostile_record() RETURNS trigger LANGUAGE plpgsql"
            " SECURITY DEFINER AS $$ BEGIN IF NEW.job_name = 'daily_report' THEN"
            " RAISE EXCEPTION 'permission denied for table job_runs'"
            " USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$"
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "--database-url", jobs_url, "jobs", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60  # a loaded machine takes seconds to start the loop
        ran: set[str] = set()
        while time.monotonic() < deadline and ran != set(JOBS) - {"daily_report"}:
            time.sleep(0.5)
            assert process.poll() is None, "the loop ended on one job's failure"
            with psycopg.connect(db_url) as conn:
                ran = {
                    str(row[0])
                    for row in conn.execute("SELECT DISTINCT job_name FROM guard.job_runs")
                }
        assert ran == set(JOBS) - {"daily_report"}, ran
        assert process.poll() is None
    finally:
        process.terminate()
        out, err = process.communicate(timeout=20)
    assert "daily_report: failed, could not run: permission denied" in out, out
    assert "could not be recorded" in out
    assert "Traceback" not in err and "guard: error:" not in err, err
