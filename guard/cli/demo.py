"""`guard demo`: a throwaway PostgreSQL with Booking Guard applied and realistic bad data."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click
import psycopg
from psycopg import sql

from guard import queries
from guard.connection import connect, fetch_all
from guard.demo import sample_data
from guard.demo.embedded import (
    SERVER_USER,
    EmbeddedCluster,
    pg_cron_available,
    reachable_by_server_user,
)
from guard.demo.story import booking_story, data_story
from guard.errors import GuardError, first_line
from guard.schema.migrate import Migrator

DEMO_DATABASE = "guard_demo"
# The reporting login docs/bi.md's examples connect as.
REPORTING_LOGIN = "bi_user"
LEGACY_UNTIL = "0004_guard_tables"  # the sample data predates the invariant migrations


def _state_dir() -> Path:
    """GUARD_STATE_DIR, else .guard-state in the current directory (git-ignored), else, when the
    postgres OS user cannot reach that, a directory under /tmp named after this project."""
    configured = os.environ.get("GUARD_STATE_DIR")
    if configured:
        return Path(configured).resolve()
    local = Path(".guard-state").resolve()
    if reachable_by_server_user(local.parent):
        return local
    digest = hashlib.sha256(str(local).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"booking-guard-demo-{digest}"


@click.command()
@click.option("--stop", is_flag=True, help="Stop the embedded PostgreSQL and exit.")
def demo(stop: bool) -> None:
    """Start (or reuse) an embedded PostgreSQL, apply Booking Guard, load sample data."""
    cluster = EmbeddedCluster(_state_dir(), cron_database=DEMO_DATABASE)
    if stop:
        click.echo(
            f"Embedded PostgreSQL stopped (data kept in {cluster.data_dir})."
            if cluster.stop()
            else f"Embedded PostgreSQL was not running (data in {cluster.data_dir})."
        )
        return
    if not cluster.start():
        started = "reused (already running)"
    elif cluster.moved_from_port is not None:
        started = f"started on a new port ({cluster.moved_from_port} was taken by another program)"
    else:
        started = "started"
    click.echo(f"1. Embedded PostgreSQL {started}: port {cluster.port}, data in {cluster.data_dir}")

    _create_database(cluster.url("postgres"), DEMO_DATABASE)
    url = cluster.url(DEMO_DATABASE)
    if pg_cron_available():  # the jobs migration then schedules detect, reconcile, ... for real
        with connect(url, autocommit=True) as conn:
            conn.execute(queries.CREATE_PG_CRON)
    # The sample data plays a legacy database: its rows are loaded after the booking tables
    # exist and before Booking Guard's invariants arrive, as an old application wrote them.
    with Migrator(url) as migrator:
        applied = migrator.apply(to=LEGACY_UNTIL)
        with connect(url) as conn:
            try:
                summary = sample_data.load(conn)
            except ValueError:
                summary = None
        applied += migrator.apply()
    shown = (
        ", ".join(applied)
        if len(applied) <= 3
        else f"{len(applied)}, {applied[0]} ... {applied[-1]}"
    )
    click.echo(f"2. Migrations: applied {shown}" if applied else "2. Migrations: up to date")
    if summary is None:
        click.echo("3. Sample data: already loaded")
    else:
        click.echo(
            f"3. Sample data: {summary.companies} companies, {summary.calls} calls,"
            f" {summary.appointments} appointments over {sample_data.DAYS} days"
        )
        bad = sum(summary.problems.values())
        share = 100 * bad / summary.calls
        click.echo(f"   bad rows mixed in, as in the incident ({bad} calls, {share:.0f} %):")
        for problem, count in sorted(summary.problems.items()):
            click.echo(f"     {problem:<28} {count:>5}")
        click.echo("   legitimate look-alikes that must not be flagged:")
        for kind, count in sorted(summary.legitimate_lookalikes.items()):
            click.echo(f"     {kind:<32} {count:>5}")
        data_story(url, click.echo)
        booking_story(url, click.echo)
    [(open_alerts, open_reviews, pending, scheduled)] = fetch_all(url, queries.DEMO_STATE)
    click.echo(f"Jobs: {scheduled or '?'}")
    click.echo(
        f"Now: {open_alerts or 0} open alerts (`guard alerts list`),"
        f" {open_reviews or 0} review items waiting (`guard review list`)."
    )
    if pending:
        click.echo(
            f"Invariants: triggers active; {pending} constraint(s) NOT VALID because old rows"
            " violate them. `guard db validate` reconciles what is safe and validates them."
        )
    else:
        click.echo("Invariants: triggers active, every constraint validated.")

    with connect(url, autocommit=True) as conn:
        conn.execute(queries.DEMO_REPORTING_LOGIN)
    bi_url = url.replace(f"{SERVER_USER}@", f"{REPORTING_LOGIN}@", 1)

    click.echo(
        f"\nConnect:\n  psql {url}\n  export GUARD_DATABASE_URL={url}\n"
        "  guard db status; guard alerts list; guard review list; guard breaker list\n"
        f"  psql {bi_url}   # {REPORTING_LOGIN}: the reporting login of docs/bi.md, bound to"
        f" every sample company\n{_where_guard_is()}\n"
        "Stop it with `make demo-stop` (or `guard demo --stop`)."
    )


def _where_guard_is() -> str:
    """`make demo` installs guard in the virtualenv, which is not on PATH: say how to reach it."""
    started_as = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    candidate = (
        started_as.absolute()
        if started_as.name == "guard"
        else Path(sys.executable).parent / "guard"
    )
    found = shutil.which("guard")
    if found and Path(found).resolve() == candidate.resolve():
        return "`guard` is on your PATH: `guard --help` lists every command."
    if candidate.exists():
        return (
            f"`guard` is not on your PATH: call {candidate}, or run"
            f" `source {candidate.parent}/activate` first."
        )
    return "`guard --help` lists every command."


def _create_database(maintenance_url: str, name: str) -> None:
    with connect(maintenance_url, autocommit=True) as conn:
        if conn.execute(queries.DATABASE_EXISTS, (name,)).fetchone() is not None:
            return
        try:
            conn.execute(sql.SQL(queries.CREATE_DATABASE).format(sql.Identifier(name)))
        except psycopg.Error as error:
            raise GuardError(f"cannot create database {name}: {first_line(error)}") from None
