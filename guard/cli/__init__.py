"""The `guard` command line. Every error is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from typing import Any

import click

from guard import __version__
from guard.cli.breaker import breaker
from guard.cli.check import check, reconcile
from guard.cli.db import db
from guard.cli.demo import demo
from guard.cli.jobs import jobs
from guard.cli.metrics import metrics
from guard.cli.report import report
from guard.cli.review import review
from guard.cli.tenant import tenant
from guard.cli.watch import watch
from guard.errors import GuardError


class _Group(click.Group):
    """Turns a GuardError anywhere below into `guard: error: ...` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GuardError as error:
            click.echo(f"guard: error: {error}", err=True)
            sys.exit(error.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="guard")
@click.option(
    "--database-url",
    envvar="GUARD_DATABASE_URL",
    default=None,
    help="postgresql://user@host:port/dbname (default: GUARD_DATABASE_URL, else PG* variables).",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """Booking Guard: keeps an appointment-booking PostgreSQL database consistent."""
    ctx.ensure_object(dict)
    ctx.obj["database_url"] = database_url


main.add_command(breaker)
main.add_command(check)
main.add_command(db)
main.add_command(demo)
main.add_command(reconcile)
main.add_command(review)
main.add_command(tenant)
main.add_command(jobs)
main.add_command(report)
main.add_command(watch)
main.add_command(metrics)
