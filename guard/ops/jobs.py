"""The scheduled jobs run from outside, where pg_cron is not installed: the same guard.run_job
that pg_cron calls (one run per job at a time, heartbeats, failure and missed-run alerts), each
job's status beside what pg_cron schedules, and the loop `guard jobs run` keeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from guard import queries
from guard.connection import connect, reconnect_delay, scalar, standby_address
from guard.errors import DatabaseUnavailable, GuardError, PermissionDenied, first_line
from guard.ops.cron import CronError, next_fire
from guard.ops.login_limits import LoginLimit, within_limits

# Never sleep longer than this between looks at guard.jobs (a changed job is picked up).
MAX_SLEEP_S = 60.0


@dataclass(frozen=True)
class RunResult:
    """What guard.run_job said about one run."""

    job: str
    status: str  # succeeded | failed | skipped
    message: str

    @classmethod
    def parse(cls, job: str, message: str) -> RunResult:
        # "<job>: succeeded in 3 ms" | "<job>: failed after 3 ms: <error>" | "<job>: skipped, ..."
        # (and guard jobs run's own "<job>: failed, could not run: ...")
        word = message.split(": ", 1)[1].split(maxsplit=1)[0] if ": " in message else ""
        status = word.rstrip(",") if word.rstrip(",") in ("succeeded", "failed") else "skipped"
        return cls(job, status, message)


def run_job(conn: psycopg.Connection[Any], job: str) -> RunResult:
    """One run of one job in its own transaction (conn must be in autocommit mode)."""
    started: list[datetime] = []
    try:
        return within_limits(
            conn,
            None,
            lambda _: _run(conn, job, started),
            lambda _: f"job {job}",
            program="guard jobs run",
        )
    except LoginLimit as limit:
        cause = limit.__cause__
        assert isinstance(cause, psycopg.Error)
        return RunResult(job, "failed", _record_failure(conn, job, started[-1:], cause, limit))
    except psycopg.Error as error:
        # read-only: a primary demoted under us (the loop waits for the new one)
        if conn.broken or isinstance(
            error, psycopg.OperationalError | psycopg.errors.ReadOnlySqlTransaction
        ):
            raise DatabaseUnavailable(f"job {job} could not run: {first_line(error)}") from None
        return RunResult(job, "failed", _record_failure(conn, job, started[-1:], error))


def _run(conn: psycopg.Connection[Any], job: str, started: list[datetime]) -> RunResult:
    """One attempt of run_job; `started` gets when it began."""
    with conn.transaction():
        # what pg_cron runs (guard.job_command): for detect, a runaway pass fails the job
        # (run_job records it) instead of running on
        command = conn.execute(queries.JOB_COMMAND, (job,)).fetchone()
        assert command is not None
        started.append(command[1])
        cursor = conn.execute(str(command[0]).encode())  # no parameters: every statement
        while cursor.nextset():
            pass
        row = cursor.fetchone()  # the last statement's: guard.run_job's message
    assert row is not None
    return RunResult.parse(job, str(row[0]))


def _record_failure(
    conn: psycopg.Connection[Any],
    job: str,
    started: list[datetime],
    error: psycopg.Error,
    said: LoginLimit | None = None,
) -> str:
    """Record a run that raised as its job's failure."""
    reason = first_line(error) if said is None else str(said)
    try:
        with conn.transaction():
            conn.execute(
                queries.RECORD_FAILED_JOB_RUN,
                (job, started[0] if started else None, f"could not run: {reason}", error.sqlstate),
            )
    except psycopg.Error as again:
        if conn.broken:
            raise DatabaseUnavailable(f"job {job} could not run: {reason}") from None
        return (
            f"{job}: failed, could not run: {reason}; and could not be recorded:"
            f" {first_line(again)}"
        )
    return f"{job}: failed, could not run: {reason} (recorded in guard.job_runs)"


def cron_schedule(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, bool]] | str:
    """pg_cron's guard_* jobs in this database by job name: (schedule, active); where pg_cron is
    absent, or this login may not read cron.job (a reporting login: pg_cron keeps it to its
    owner), what job_status says of every job instead."""
    readable = scalar(conn, queries.CRON_JOBS_READABLE)
    if not readable:
        return "not installed" if readable is None else "not visible to this login"
    rows = conn.execute(queries.CRON_JOBS).fetchall()
    return {name: (schedule, active) for name, schedule, active in rows}


def job_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each job of guard.job_status, with when its cron schedule next fires and pg_cron's view."""
    cron = cron_schedule(conn)
    jobs = conn.cursor(row_factory=dict_row).execute(queries.JOB_STATUS).fetchall()
    now = db_now(conn)
    # The schedule pg_cron is given for each job (guard.cron_schedule, as `guard db verify`
    # expects it): pg_cron before 1.5 runs an 'N seconds' job every minute, which is no drift.
    names = [job["job_name"] for job in jobs]
    expected = (
        dict(conn.execute(queries.CRON_FORMS, (names,)).fetchall())
        if isinstance(cron, dict)
        else {}
    )
    for job in jobs:
        # guard.job_status's next_due_at is the last start plus the interval (now when never
        # run); the schedule says when pg_cron, and `guard jobs run`, really run it: its first
        # time after the last start (in the past when a run was missed: due now), or after now.
        try:
            job["next_due_at"] = next_fire(job["schedule"], job["last_started_at"] or now)
        except CronError as error:
            raise GuardError(
                f"job {job['job_name']} has a schedule pg_cron would refuse:"
                f" {job['schedule']!r} ({error})"
            ) from None
        scheduled = cron if isinstance(cron, str) else cron.get(job["job_name"])
        if isinstance(scheduled, str):
            job["pg_cron"] = scheduled
        elif scheduled is None:
            job["pg_cron"] = "not scheduled"
        elif scheduled != (expected.get(job["job_name"]), True):
            job["pg_cron"] = f"drift ({scheduled[0]}, active={scheduled[1]})"
        else:
            job["pg_cron"] = "scheduled"
    return jobs


def select_jobs(
    conn: psycopg.Connection[Any], job_names: tuple[str, ...], warn: Callable[[str], None]
) -> dict[str, Any]:
    """The jobs by name; refuses an unknown name, and warns when pg_cron runs them too."""
    found = {job["job_name"]: job for job in job_status(conn)}
    # A login that may not run any job is refused once, not once per job.
    if not scalar(conn, queries.MAY_RUN_JOBS):
        raise PermissionDenied("permission denied for function run_job")
    unknown = sorted(set(job_names) - set(found))
    if unknown:
        raise GuardError(f"unknown job(s): {', '.join(unknown)} (known: {', '.join(found)})")
    if any(job["pg_cron"] == "scheduled" for job in found.values()):
        warn(
            "pg_cron already schedules these jobs in this database;"
            " runs from here come on top (a concurrent run of the same job is skipped)"
        )
    return found


class OnStandby(DatabaseUnavailable):
    """The server reached is a hot standby (a single-host URL, or a primary demoted under us):
    jobs do nothing there, so the loop waits for a primary as for one that is unreachable."""


def require_primary(conn: psycopg.Connection[Any]) -> None:
    where = standby_address(conn)
    if where is not None:
        raise OnStandby(f"{where} is a read-only standby (in recovery), jobs run on the primary")


def run_forever(
    database_url: str | None,
    only: set[str],
    max_sleep: float,
    say: Callable[[datetime, str], None],
    warn: Callable[[str], None],
) -> None:
    """Run due jobs until interrupted (the caller catches KeyboardInterrupt)."""
    failures = 0
    checked = False
    while True:
        try:
            with connect(database_url, autocommit=True, application_name="guard jobs run") as conn:
                require_primary(conn)
                if not checked:
                    select_jobs(conn, tuple(sorted(only)), warn)
                    checked = True
                if failures:
                    say(db_now(conn), "reconnected")
                failures = 0
                run_due(conn, only, max_sleep, say)
        except (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnavailable) as error:
            # After a failover the next attempt may reach the new primary. A connection
            # that worked ends an outage: the next one backs off from the minimum again.
            failures += 1
            delay = reconnect_delay(failures)
            why = (
                error
                if isinstance(error, OnStandby)
                else f"database unavailable ({first_line(error)})"
            )
            warn(f"{why}; retrying in {delay:.1f} s")
            time.sleep(delay)


def run_due(
    conn: psycopg.Connection[Any],
    only: set[str],
    max_sleep: float,
    say: Callable[[datetime, str], None],
) -> None:
    """Run each job when it is due, forever (until the connection fails)."""
    while True:
        due = _enabled(conn, only)
        now = db_now(conn)
        for job in due:
            # A job never run is run at once (the runner catches up when it first starts);
            # after that, at the times of its schedule.
            never_run = job["last_started_at"] is None
            if never_run or (job["next_due_at"] is not None and job["next_due_at"] <= now):
                result = run_job(conn, job["job_name"])
                if result.status == "skipped" and "is a replica" in result.message:
                    require_primary(conn)  # demoted under us: wait for the new primary
                say(db_now(conn), result.message)
        upcoming = min(
            (job["next_due_at"] for job in _enabled(conn, only) if job["next_due_at"]),
            default=now + timedelta(seconds=max_sleep),
        )
        wait = (upcoming - db_now(conn)).total_seconds()
        time.sleep(max(1.0, min(max_sleep, wait)))


def _enabled(conn: psycopg.Connection[Any], only: set[str]) -> list[dict[str, Any]]:
    found = [
        job for job in job_status(conn) if job["enabled"] and (not only or job["job_name"] in only)
    ]
    if not found:
        raise GuardError("no enabled job to run")
    return found


def db_now(conn: psycopg.Connection[Any]) -> datetime:
    now: datetime = scalar(conn, queries.NOW)
    return now
