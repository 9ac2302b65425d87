"""`guard review`: the queue of problems a person has to look at."""

from __future__ import annotations

from typing import Any

import click

from guard import queries
from guard.cli.alerts import readable_source, say_truncated
from guard.cli.output import (
    emit_record,
    emit_streamed,
    json_option,
    render_json,
    render_table,
    wide_option,
    write,
)
from guard.cli.params import COUNT, NON_EMPTY_TEXT, ROW_ID
from guard.connection import os_user, scalar, transaction
from guard.errors import GuardError, first_line

_COLUMNS = [
    "id",
    "priority",
    "reason",
    "status",
    "company_id",
    "call_id",
    "appointment_id",
    "created_at",
    "claimed_by",
    "claimed_by_role",
    "closed_at",
    "closed_by",
    "closed_by_role",
    "false_positive",
    "note",
    "details",
]
# Left out first to last when a terminal is too narrow for every column (`--wide` shows them).
_DROP_ORDER = [
    "closed_by_role",
    "closed_by",
    "closed_at",
    "claimed_by_role",
    "false_positive",
    "appointment_id",
    "details",
    "claimed_by",
    "company_id",
    "status",
    "created_at",
]
# The database records the login that claims or closes an item (claimed_by_role,
# closed_by_role); --actor is a label kept beside it, for a person behind a shared login.
_actor = click.option(
    "--actor",
    type=NON_EMPTY_TEXT,
    default=os_user,
    show_default="your user name",
    help="A label kept beside your database login, which is recorded as who did it.",
)


def _change_and_show(
    database_url: str | None,
    query: str,
    params: tuple[Any, ...],
    title: str,
    as_json: bool,
    done: str,
) -> list[Any]:
    """Run a statement that changes the queue and print its rows."""
    with transaction(database_url) as conn:
        rows = conn.execute(query, params).fetchall()
        # rendered before the commit: a rendering error changes nothing
        if as_json:
            rendered = render_json([dict(zip(_COLUMNS, row, strict=True)) for row in rows])
        else:
            rendered = render_table(title, _COLUMNS, rows, drop_order=_DROP_ORDER) if rows else ""
    try:
        write(rendered)
    except OSError as error:
        raise GuardError(
            f"{done} (committed), but printing the result failed: {first_line(error)};"
            " `guard review list` shows the queue"
        ) from None
    return rows


@click.group()
def review() -> None:
    """List, claim, resolve and dismiss review items."""


@review.command("list")
@wide_option
@click.option(
    "--status",
    type=click.Choice(["open", "claimed", "resolved", "dismissed", "active"]),
    default="active",
    show_default=True,
    help="active = open or claimed.",
)
@click.option("--limit", type=COUNT, default=50, show_default=True, help="At most this many.")
@click.option("--all", "show_all", is_flag=True, help="Every matching item (no --limit).")
@json_option
@click.pass_obj
def list_items(
    obj: dict[str, str | None], status: str, limit: int, show_all: bool, as_json: bool
) -> None:
    """Items in queue order (priority, then age); says how many it left out."""
    statuses = ["open", "claimed"] if status == "active" else [status]
    with transaction(obj["database_url"]) as conn:
        items = readable_source(conn, "review_items")
        count = scalar(conn, queries.review_item_count(items), (statuses,))
        shown = emit_streamed(
            conn,
            "guard_review_list",
            queries.review_item_list(_COLUMNS, items, limited=not show_all),
            (statuses,) if show_all else (statuses, limit),
            f"Review items ({status})",
            _DROP_ORDER,
            as_json,
        )
    say_truncated(shown, int(count or 0), as_json)


@review.command("show")
@click.argument("item_id", type=ROW_ID)
@click.option(
    "--full", is_flag=True, help="Details and texts whole, however large (else cut as in lists)."
)
@json_option
@click.pass_obj
def show_item(obj: dict[str, str | None], item_id: int, full: bool, as_json: bool) -> None:
    """One review item with its details (whole with --full)."""
    with transaction(obj["database_url"]) as conn:
        items = readable_source(conn, "review_items")
        row = conn.execute(queries.review_item(_COLUMNS, items, full), (item_id,)).fetchone()
    if row is None:
        raise GuardError(
            f"review item {item_id} does not exist or is not visible to this login"
            " (see `guard review list --status active`)"
        )
    emit_record(f"Review item {item_id}", dict(zip(_COLUMNS, row, strict=True)), as_json)


@review.command()
@click.option("--limit", type=COUNT, default=1, show_default=True, help="How many items to take.")
@_actor
@json_option
@click.pass_obj
def claim(obj: dict[str, str | None], limit: int, actor: str, as_json: bool) -> None:
    """Take the most urgent open items of your companies (never one another reviewer holds)."""
    rows = _change_and_show(
        obj["database_url"],
        queries.review_claim(_COLUMNS),
        (actor, limit),
        f"Claimed by {actor}",
        as_json,
        "the items were claimed",
    )
    if not rows and not as_json:
        click.echo("Nothing to claim: the queue is empty.")


def _closing(name: str, status: str, summary: str, note_help: str, *options: Any) -> None:
    """Add `review <name>`, which closes an item as `status` with a note."""

    def close(
        obj: dict[str, str | None],
        item_id: int,
        note: str,
        actor: str,
        as_json: bool,
        false_positive: bool = False,
    ) -> None:
        _change_and_show(
            obj["database_url"],
            queries.review_close(_COLUMNS),
            (item_id, actor, status, note, false_positive),
            f"Review item {item_id} {status}",
            as_json,
            f"review item {item_id} was {status}",
        )

    note = click.option("--note", type=NON_EMPTY_TEXT, required=True, help=note_help)
    for decorate in (click.pass_obj, json_option, _actor, *options, note):
        close = decorate(close)
    review.command(name, help=summary)(click.argument("item_id", type=ROW_ID)(close))


_closing("resolve", "resolved", "Close an item: the problem was dealt with.", "What was done.")
_closing(
    "dismiss",
    "dismissed",
    "Close an item: nothing to do.",
    "Why nothing needs doing.",
    click.option("--false-positive", is_flag=True, help="Detection was wrong (feeds the KPI)."),
)
