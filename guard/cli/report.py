"""`guard report`: the daily report of one UTC day, as text, Markdown or JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from guard.cli.output import emit_json, json_option, note
from guard.connection import connect
from guard.errors import GuardError
from guard.ops.daily_report import daily_report, render_markdown, render_text, totals


@click.command()
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The UTC day to report (default: yesterday).",
)
@json_option
@click.option("--markdown", is_flag=True, help="Print Markdown.")
@click.pass_obj
def report(obj: dict[str, str | None], day: datetime | None, as_json: bool, markdown: bool) -> None:
    """The daily report: calls and appointments, inconsistency rate, issues by rule,
    auto-corrected vs sent to review, recovery and detection latency, top issues with their
    likely cause and action, action items, trend against the 7 days before, open review items."""
    if as_json and markdown:
        raise GuardError("--json and --markdown exclude each other")
    report_day = day.date() if day else datetime.now(UTC).date() - timedelta(days=1)
    with connect(obj["database_url"], autocommit=True, application_name="guard report") as conn:
        found = daily_report(conn, report_day)
    rows = found.rows
    if not rows:
        note(
            f"no company has a report of {report_day} (no companies then, or none this login may"
            " read): nothing is stored",
        )
    if found.standby is not None:
        note(
            f"{found.standby} is a read-only standby (in recovery): the report of {report_day} is"
            " computed now and not stored (`guard report` against the primary stores a day that"
            " has ended)",
        )
    elif not found.ended:
        note(
            f"{report_day} (UTC) has not ended: this report is computed now and not stored (stored"
            " reports cover whole days)",
        )
    if as_json:
        emit_json(
            {
                "date": report_day,
                "generated_now": found.generated,
                "stored": found.stored,
                "total": totals(rows),
                "companies": rows,
            }
        )
    elif markdown:
        click.echo(render_markdown(report_day, rows))
    else:
        click.echo(render_text(report_day, rows))
