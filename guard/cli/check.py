"""`guard check` and `guard reconcile`: detection and reconciliation on demand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
import psycopg

from guard import queries
from guard.cli.output import emit_json, emit_table, json_option, note, warn, when
from guard.cli.params import ROW_ID
from guard.connection import connect, fetch_all, guard_function_errors, scalar, transaction
from guard.errors import GuardError
from guard.ops.detection import BatchChecked, HistoryProgress, arm_pass_timeout, check_history

_SUMMARY_COLUMNS = ["check", "rule", "offending", "opened", "repeated", "resolved"]
_STATUS_COLUMNS = [*_SUMMARY_COLUMNS, "status", "error"]


def _skip_on_subscriber(database_url: str | None, what: str, as_json: bool, empty: Any) -> bool:
    """On a logical subscriber of the booking tables (guard.booking_subscription() names the
    subscription): say so in one line (stderr), print an empty result for --json, and return
    True: the command does nothing there."""
    with connect(database_url, autocommit=True, application_name="guard check") as conn:
        try:
            subscription = scalar(conn, queries.BOOKING_SUBSCRIPTION)
        except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName):
            return False  # a schema older than the function
    if subscription is None:
        return False
    note(
        f"this database subscribes to the booking tables (subscription {subscription}): {what} runs"
        " on the publisher; nothing done here",
    )
    if as_json:
        emit_json(empty)
    return True


def _setting(database_url: str | None, name: str) -> int:
    [(value,)] = fetch_all(database_url, queries.INTEGER_SETTING, (name,))
    return int(value)


# Shown for a check with thresholds that this run did not judge: only a windowed pass that runs
# the check through judges it (guard.judge_check_threshold), not --all's batches or one call.
NOT_JUDGED = "not judged"


def _thresholds(conn: psycopg.Connection[Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """The checks that have thresholds (guard.checks: warn_above, error_above, which judge each
    windowed pass), each with them as JSON and as text; none for a login that may not read
    guard.checks."""
    if not scalar(conn, queries.MAY_READ_CHECKS):
        return {}
    rows = conn.execute(queries.CHECK_THRESHOLDS).fetchall()
    return {
        check_id: ({"warn_above": warn, "error_above": error, "unit": unit}, text)
        for check_id, warn, error, unit, text in rows
    }


def _detect_window(database_url: str | None) -> tuple[list[Any], dict[str, str]]:
    """The windowed pass's rows, and the outcome (pass, warn or fail) of each check it judged."""
    with connect(database_url, application_name="guard check") as conn, guard_function_errors():
        arm_pass_timeout(conn)
        rows = conn.execute(queries.RUN_CHECKS_WINDOWED).fetchall()
        judged = [row[0] for row in rows if row[-2] == "ok"]
        # The pass holds the detection lock until this transaction ends, so no other pass has
        # written since: each check's newest row is this pass's (a check it did not run through
        # has none of its own, hence only the checks that ran).
        outcomes = dict(conn.execute(queries.LATEST_DETECTION_OUTCOMES, (judged,)).fetchall())
        conn.commit()
    return rows, outcomes


def _check_call(database_url: str | None, call_id: int) -> list[Any]:
    """Every check of one call, with its status and error, in one transaction."""
    with transaction(database_url, application_name="guard check") as conn:
        if not scalar(conn, queries.MAY_RUN_CHECKS):
            return conn.execute(queries.CHECK_CALL, (call_id,)).fetchall()
        company = conn.execute(queries.CALL_COMPANY, (call_id,)).fetchone()
        if company is None:
            raise GuardError(f"call {call_id} does not exist")
        conn.execute(queries.ASSERT_TENANT, (company[0],))
        return conn.execute(queries.RUN_CHECKS_FOR_CALL, (call_id,)).fetchall()


def report_check_failures(rows: list[Any]) -> bool:
    """One line on stderr per check that did not run through; True when any failed or was cut."""
    failed = False
    for check_id, *_, status, error in rows:
        if status == "ok":
            continue
        if status in ("failed", "cut", "not run"):
            failed = True
            verb = {"failed": "failed", "cut": "was cut"}.get(status, "did not run through")
            note(f"check {check_id} {verb}: {error}", "error")
        else:
            warn(f"check {check_id} {status}: {error}")
    return failed


def _to_stderr(event: HistoryProgress) -> None:
    """`guard check --all`'s progress, one line on stderr per transaction."""
    if isinstance(event, BatchChecked):
        line = (
            f"batch {event.number}/{event.batches}: {event.check_id}, {when(event.since)} onwards,"
            f" {event.offending} offending"
        )
    else:
        line = (
            f"open alerts {event.number}/{event.chunks}: {event.rechecked} re-checked,"
            f" {event.resolved} resolved"
        )
    click.echo(line, err=True)


@click.command()
@click.option(
    "--call", "call_id", type=ROW_ID, help="Check one call now (every check), not the window."
)
@click.option(
    "--all",
    "whole_history",
    is_flag=True,
    help="Check the whole history (check by check, progress on stderr), not the recent window.",
)
@click.option(
    "--batch-days",
    type=click.IntRange(1, 3650),
    help="With --all: days of observed time per check and transaction (default: the whole"
    " history up to about 2 million rows, 7 beyond).",
)
@json_option
@click.pass_obj
def check(
    obj: dict[str, str | None],
    call_id: int | None,
    whole_history: bool,
    batch_days: int | None,
    as_json: bool,
) -> None:
    """Run detection now: every check over the recent window, the whole history, or one call.

    Alerts are opened, bumped and resolved exactly as the scheduled job does. Each check runs
    isolated: one that fails, or is cut by the pass's timeout, is named on stderr with its error
    (one line each) and the others still run. Exits 1 when anything offends or a check failed,
    so a script can tell.

    A check with thresholds (guard.checks.warn_above, error_above) shows its outcome against
    them: pass, warn or fail, as the windowed pass judged it (the exit status does not change:
    a check that warns has offending rows). --all and --call judge no thresholds."""
    database_url = obj["database_url"]
    if whole_history and call_id is not None:
        raise click.UsageError("--all and --call exclude each other")
    if _skip_on_subscriber(database_url, "detection", as_json, []):
        return
    outcomes: dict[str, str] = {}
    if whole_history:
        batch = None if batch_days is None else timedelta(days=batch_days)
        rows = check_history(database_url, batch, _to_stderr)
        title = "Detection over the whole history"
    elif call_id is not None:
        rows = _check_call(database_url, call_id)
        title = f"Detection for call {call_id}"
    else:
        window = _setting(database_url, "detection_window_minutes")
        rows, outcomes = _detect_window(database_url)
        title = f"Detection over the last {window} minutes"
        note(
            f"looked at rows of the last {window} minutes only (detection_window_minutes) and at"
            " open alerts; `guard check --all` looks at the whole history",
        )
    with connect(database_url, application_name="guard check") as conn:
        thresholds = _thresholds(conn)
    judged = {row[0]: outcomes.get(row[0], NOT_JUDGED) for row in rows if row[0] in thresholds}
    if as_json:
        emit_json(
            [
                {
                    **dict(zip(_STATUS_COLUMNS, row, strict=True)),
                    "outcome": outcomes.get(row[0]),
                    "thresholds": thresholds[row[0]][0] if row[0] in thresholds else None,
                }
                for row in rows
            ]
        )
    else:
        emit_table(
            title,
            [*_SUMMARY_COLUMNS, "status", "outcome", "thresholds"],
            [
                [
                    *row[:-1],
                    judged.get(row[0], ""),
                    thresholds[row[0]][1] if row[0] in thresholds else "",
                ]
                for row in rows
            ],
        )
    if NOT_JUDGED in judged.values() and not outcomes:
        note(
            "thresholds judge the windowed pass only (`guard check` without --all or --call): not"
            " judged here",
        )
    failed = report_check_failures(rows)
    if failed or any(row[2] for row in rows):
        raise SystemExit(1)


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be done; change nothing.")
@json_option
@click.pass_obj
def reconcile(obj: dict[str, str | None], dry_run: bool, as_json: bool) -> None:
    """Correct what is safe, queue the rest for review (at most reconcile_batch_limit rows).

    When a run stops at that cap it says so on stderr (and `capped` in JSON): run it again to
    continue."""
    if not dry_run and _skip_on_subscriber(
        obj["database_url"], "reconciliation", as_json, {"dry_run": False, "actions": {}}
    ):
        return
    cap = _setting(obj["database_url"], "reconcile_batch_limit")
    rows = fetch_all(obj["database_url"], queries.RECONCILE, (dry_run,))
    capped = sum(n for _, n in rows) >= cap
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "actions": {action: n for action, n in rows},
                "cap": cap,
                "capped": capped,
            }
        )
    else:
        title = "Reconciliation (dry run: nothing changed)" if dry_run else "Reconciliation"
        emit_table(title, ["action", "rows"], rows)
    if capped:
        again = (
            "`guard reconcile --dry-run` again after a real run"
            if dry_run
            else ("`guard reconcile` again to continue")
        )
        note(
            f"stopped at the cap of {cap} rows (reconcile_batch_limit); more may remain: run"
            f" {again}",
        )
