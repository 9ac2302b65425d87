"""`guard report`: the daily report of one UTC day, as text, Markdown or JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from guard.cli.output import emit_json, json_option, note
from guard.connection import connect
from guard.errors import GuardError, server_address
from guard.ops.daily_report import (
    compute_report,
    in_recovery,
    load_report,
    preview_report,
    render_markdown,
    render_text,
    stored_report,
    totals,
    utc_today,
)


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
    standby = None
    with connect(obj["database_url"], autocommit=True, application_name="guard report") as conn:
        ended = report_day < utc_today(conn)
        stored = ended
        if in_recovery(conn):
            # A hot standby stores nothing: a stored day is read, any other is computed.
            rows = stored_report(conn, report_day) if ended else []
            if not rows:
                standby = server_address(conn.info)
                rows, stored = compute_report(conn, report_day), False
            generated = standby is not None
        elif ended:
            rows, generated = load_report(conn, report_day)
        else:
            rows, generated = preview_report(conn, report_day), True
    # A day with no company in it (none then, or none this login may read) stores no row.
    stored = stored and bool(rows)
    if not rows:
        note(
            f"no company has a report of {report_day} (no companies then, or none this login may"
            " read): nothing is stored",
        )
    if standby is not None:
        note(
            f"{standby} is a read-only standby (in recovery): the report of {report_day} is"
            " computed now and not stored (`guard report` against the primary stores a day that"
            " has ended)",
        )
    elif not ended:
        note(
            f"{report_day} (UTC) has not ended: this report is computed now and not stored (stored"
            " reports cover whole days)",
        )
    if as_json:
        emit_json(
            {
                "date": report_day,
                "generated_now": generated,
                "stored": stored,
                "total": totals(rows),
                "companies": rows,
            }
        )
    elif markdown:
        click.echo(render_markdown(report_day, rows))
    else:
        click.echo(render_text(report_day, rows))
