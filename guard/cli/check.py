"""`guard check` and `guard reconcile`: detection and reconciliation on demand."""

from __future__ import annotations

import click

from guard.cli.output import emit_json, emit_table
from guard.cli.params import ROW_ID
from guard.db.connection import fetch_all

_SUMMARY_COLUMNS = ["rule", "offending", "opened", "repeated", "resolved"]


@click.command()
@click.option(
    "--call", "call_id", type=ROW_ID, help="Check one call now (every rule), not the window."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(obj: dict[str, str | None], call_id: int | None, as_json: bool) -> None:
    """Run detection now: every rule over the recent window (or one call).

    Alerts are opened, bumped and resolved exactly as the scheduled job does. Exits 1 when
    anything offends, so a script can tell."""
    if call_id is None:
        rows = fetch_all(obj["database_url"], "SELECT * FROM guard.detect()")
    else:
        rows = fetch_all(obj["database_url"], "SELECT * FROM guard.check_call(%s)", (call_id,))
    if as_json:
        emit_json([dict(zip(_SUMMARY_COLUMNS, row, strict=True)) for row in rows])
    else:
        emit_table(
            "Detection" + (f" for call {call_id}" if call_id else ""), _SUMMARY_COLUMNS, rows
        )
    if any(row[1] for row in rows):
        raise SystemExit(1)


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be done; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def reconcile(obj: dict[str, str | None], dry_run: bool, as_json: bool) -> None:
    """Correct what is safe, queue the rest for review (at most reconcile_batch_limit rows)."""
    rows = fetch_all(obj["database_url"], "SELECT * FROM guard.reconcile(%s)", (dry_run,))
    if as_json:
        emit_json({"dry_run": dry_run, "actions": {action: n for action, n in rows}})
        return
    title = "Reconciliation (dry run: nothing changed)" if dry_run else "Reconciliation"
    emit_table(title, ["action", "rows"], rows)
