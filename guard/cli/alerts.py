"""`guard alerts list|show`: the alerts detection and the booking path opened (guard.alerts)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from guard import queries
from guard.cli.output import echo_text, emit_record, emit_streamed, json_option, wide_option
from guard.cli.params import BIGINT, COUNT, ROW_ID
from guard.cli.watch import CHANNELS, SETTINGS, sinks
from guard.connection import scalar, transaction, who_acts
from guard.errors import ConfigurationError, GuardError
from guard.ops.dispatch.message import test_message
from guard.ops.dispatch.sinks import DeliveryError
from guard.redact import redact_url

# Left out first to last when a terminal is too narrow for every column (`--wide` shows them).
LIST_DROP_ORDER = [
    "resolved_at",
    "first_seen_at",
    "rule_id",
    "occurrences",
    "status",
    "company_id",
    "last_seen_at",
]


def readable_source(conn: psycopg.Connection[Any], table: str) -> str:
    """guard.<table> (alerts, review_items), or for a login that may not read its free text raw
    (the reporting role) guard.<table>_report: the same columns with phone numbers masked, and
    the same companies."""
    may_read = scalar(conn, queries.MAY_READ_ALERT_DETAILS, (f"guard.{table}",))
    return f"guard.{table}" if may_read else f"guard.{table}_report"


def say_truncated(shown: int, total: int, as_json: bool) -> None:
    """After a list that was cut: on stdout under a table, on stderr (a note) beside JSON."""
    if shown < total:
        line = f"showing {shown} of {total} (use --limit N or --all for more)"
        click.echo(f"guard: note: {line}" if as_json else line, err=as_json)


@click.group()
def alerts() -> None:
    """List and show the alerts (open and resolved) detection and the booking path raised."""


@alerts.command("list")
@wide_option
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "all"]),
    default="open",
    show_default=True,
    help="Which alerts.",
)
@click.option("--check", "check_id", metavar="CHECK", help="Only this check (guard.checks).")
@click.option("--company", "company_id", type=BIGINT, help="Only this company.")
@click.option("--limit", type=COUNT, default=50, show_default=True, help="At most this many.")
@click.option("--all", "show_all", is_flag=True, help="Every matching alert (no --limit).")
@json_option
@click.pass_obj
def list_alerts(
    obj: dict[str, str | None],
    status: str,
    check_id: str | None,
    company_id: int | None,
    limit: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """Alerts, most severe and most recently seen first; says how many it left out."""
    where, params = queries.alert_where(status, check_id, company_id)
    with transaction(obj["database_url"], application_name="guard alerts") as conn:
        if check_id is not None and not scalar(conn, queries.CHECK_IS_KNOWN, (check_id, check_id)):
            raise click.BadParameter(
                f"no check {check_id!r} (`SELECT id FROM guard.checks` lists them)",
                param_hint="'--check'",
            )
        count = scalar(conn, queries.alert_count(where), tuple(params))
        shown = emit_streamed(
            conn,
            "guard_alerts_list",
            queries.alert_list(where, limited=not show_all),
            tuple(params if show_all else [*params, limit]),
            f"Alerts ({status})",
            LIST_DROP_ORDER,
            as_json,
        )
    say_truncated(shown, int(count or 0), as_json)


@alerts.command("show")
@click.argument("alert_id", type=ROW_ID)
@click.option(
    "--full", is_flag=True, help="Message and details whole, however large (else cut as in lists)."
)
@json_option
@click.pass_obj
def show_alert(obj: dict[str, str | None], alert_id: int, full: bool, as_json: bool) -> None:
    """One alert: its check and rule, where, when, how often, message and details (whole with
    --full)."""
    with transaction(obj["database_url"], application_name="guard alerts") as conn:
        query = queries.alert_show(readable_source(conn, "alerts"), full)
        row = conn.cursor(row_factory=dict_row).execute(query, (alert_id,)).fetchone()
    if row is None:
        raise GuardError(
            f"alert {alert_id} does not exist or is not visible to this login"
            " (see `guard alerts list --status all`)"
        )
    emit_record(f"Alert {alert_id}", row, as_json)


@alerts.command("test")
@click.option(
    "--channel",
    type=click.Choice(CHANNELS),
    required=True,
    help="The channel to send through, configured as for `guard watch` (its GUARD_* settings).",
)
@click.option(
    "--send-timeout", type=click.FloatRange(min=0.1, max=600), default=10.0, show_default=True
)
def test_channel(channel: str, send_timeout: float) -> None:
    """Send one test message through a channel, as `guard watch` would, and say what happened."""
    port = os.environ.get("GUARD_SMTP_PORT", "587")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigurationError(f"GUARD_SMTP_PORT {port[:20]!r} is not a port from 1 to 65535")
    smtp = {
        "smtp_host": os.environ.get("GUARD_SMTP_HOST"),
        "smtp_port": int(port),
        "smtp_from": os.environ.get("GUARD_SMTP_FROM"),
        "smtp_to": os.environ.get("GUARD_SMTP_TO"),
        # as watch's --smtp-starttls reads it: click's booleans (1, true, yes, on, ...)
        "smtp_starttls": click.BOOL.convert(
            os.environ.get("GUARD_SMTP_STARTTLS") or "0", None, None
        ),
    }
    [(sink, _)] = sinks([channel], dict.fromkeys(CHANNELS, 1), send_timeout, smtp)
    message = test_message(channel, who_acts(), datetime.now(UTC).replace(microsecond=0))
    try:
        sink.send(message)
    except DeliveryError as error:
        raise GuardError(f"the test message through {channel} was not delivered: {error}") from None
    # where the channel delivered, secrets masked
    where = {"stdout": "standard output", "email": f"{smtp['smtp_host']} (to {smtp['smtp_to']})"}
    target = where.get(channel) or redact_url(os.environ[SETTINGS[channel]])
    echo_text(f"sent a test message through {channel}: {target} accepted it")
