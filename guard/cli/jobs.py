"""`guard jobs`: the scheduled jobs' status, and running them from outside where pg_cron is not
installed (guard.ops.jobs)."""

from __future__ import annotations

import signal
import sys

import click

from guard.cli import EXIT_INTERRUPTED
from guard.cli.output import echo_text, emit_json, emit_table, json_option, warn, when, wide_option
from guard.connection import connect
from guard.ops.jobs import MAX_SLEEP_S, job_status, run_forever, run_job, select_jobs
from guard.ops.login_limits import within_limits


@click.group()
def jobs() -> None:
    """Scheduled jobs: detect, reconcile, review sweep, daily report, retention."""


@jobs.command()
@wide_option
@json_option
@click.pass_obj
def status(obj: dict[str, str | None], as_json: bool) -> None:
    """Each job: schedule, last run and its outcome, next due, and whether pg_cron runs it."""
    with connect(obj["database_url"], autocommit=True, application_name="guard jobs") as conn:
        found = job_status(conn)
    if as_json:
        emit_json(found)
        return
    emit_table(
        "Booking Guard jobs",
        ["job", "schedule", "enabled", "last run", "status", "ms", "next due", "pg_cron"],
        [
            [
                job["job_name"],
                job["schedule"],
                "yes" if job["enabled"] else "no",
                when(job["last_started_at"]),
                ("OVERDUE, " if job["overdue"] else "") + (job["last_status"] or "never run"),
                None if job["last_duration_ms"] is None else round(job["last_duration_ms"]),
                when(job["next_due_at"]) if job["enabled"] else "",
                job["pg_cron"],
            ]
            for job in found
        ],
        drop_order=["ms", "enabled", "pg_cron", "next due"],
    )
    failed = [job for job in found if job["last_status"] == "failed"]
    for job in failed:
        echo_text(f"{job['job_name']} last failed: {job['last_error']}")


@jobs.command()
@click.option("--once", is_flag=True, help="Run every enabled job (or --job) once now and exit.")
@click.option(
    "--job", "job_names", multiple=True, metavar="NAME", help="Only this job (repeatable)."
)
@click.option(
    "--max-sleep",
    type=click.FloatRange(min=1),
    default=MAX_SLEEP_S,
    show_default=True,
    help="Longest sleep between looks at guard.jobs (a changed job is picked up after it).",
)
@click.pass_obj
def run(
    obj: dict[str, str | None], once: bool, job_names: tuple[str, ...], max_sleep: float
) -> None:
    """Run the jobs from outside (where pg_cron is not installed).

    Without --once: a loop that runs each enabled job when its schedule is due (the first time
    of its cron schedule after its last start; a job never run at once) and sleeps until the
    next one; stop it with Ctrl-C. A lost connection is retried
    with backoff, so with a multi-host URL and target_session_attrs=read-write the loop follows
    a failover to the new primary. With --once: run now, exit 1 if any run failed.
    """
    if not once:
        _loop(obj["database_url"], set(job_names), max_sleep)
        return
    with connect(obj["database_url"], autocommit=True, application_name="guard jobs run") as conn:
        found = within_limits(
            conn,
            None,
            lambda _: select_jobs(conn, job_names, warn),
            lambda _: "reading guard.jobs",
            program="guard jobs run",
        )
        selected = list(job_names) or [name for name, job in found.items() if job["enabled"]]
        results = [run_job(conn, name) for name in selected]
    for result in results:
        echo_text(result.message)
    if any(result.status == "failed" for result in results):
        sys.exit(1)


def _loop(database_url: str | None, only: set[str], max_sleep: float) -> None:
    """Run due jobs until Ctrl-C (exit 130) or SIGTERM (a service manager's stop: exit 0)."""
    signal.signal(signal.SIGTERM, _stopped_by)
    # Ctrl-C stops it even when it was started ignoring SIGINT (inherited through exec from a
    # shell's background job or a process manager), as `guard watch` and `guard metrics` do.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Said inside the try: a Ctrl-C right after it still ends in "stopped", exit 130.
        click.echo("running due jobs; Ctrl-C stops")
        run_forever(
            database_url, only, max_sleep, lambda at, line: echo_text(f"{when(at)}  {line}"), warn
        )
    except KeyboardInterrupt:
        click.echo("stopped")
        click.get_current_context().exit(EXIT_INTERRUPTED)
    except _Stopped:
        click.echo("stopped")


class _Stopped(BaseException):
    """SIGTERM arrived. A BaseException, as KeyboardInterrupt: no `except Exception` holds it."""


def _stopped_by(_signum: int, _frame: object) -> None:
    raise _Stopped
