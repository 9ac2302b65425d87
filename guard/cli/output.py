"""Human tables by default, JSON for scripts: the one place output is formatted."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from guard.redact import visible

if TYPE_CHECKING:
    import psycopg

# Wider than any row a command prints: off a terminal, rich must never wrap or cut.
_UNLIMITED_WIDTH = 1_000_000


def echo_text(text: str, err: bool = False) -> None:
    """click.echo for a line that carries data (names, reasons, error texts): made visible."""
    click.echo(visible(text), err=err)


def note(text: str, kind: str = "note") -> None:
    """A line beside a command's output, on stderr: `guard: note: ...` (or a warning, an error)."""
    echo_text(f"guard: {kind}: {text}", err=True)


def warn(text: str) -> None:
    note(text, "warning")


# The one text format of a time: ISO 8601, UTC, to the second (`2026-11-22 09:00:00Z`).
TEXT_TIME_FORMAT = "%Y-%m-%d %H:%M:%SZ"
TEXT_TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z")


def when(value: datetime | None) -> str:
    """A time as text people read: ISO 8601 in UTC to the second, `2026-11-22 09:00:00Z`."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(TEXT_TIME_FORMAT)


def compact_json(value: Any) -> str:
    """A JSON value as one line of text: compact, keys as stored, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def render_json(payload: Any) -> str:
    # ensure_ascii (the default) writes controls and bidi characters as \u escapes: the exact
    # value for a script, nothing raw for a terminal.
    return json.dumps(payload, indent=2, default=_json_value) + "\n"


def emit_json(payload: Any) -> None:
    write(render_json(payload))


def text_of(value: Any) -> str:
    """A value as the text of a table cell: times in the one text format (`when`), JSON
    objects and arrays as compact JSON, None as ""."""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict | list):
        return compact_json(value)
    return "" if value is None else str(value)


# A column this narrow or narrower keeps its width when a list is fitted to the terminal (ids,
# times, states, check ids): the long text beside it is what gets cut.
_KEPT_COLUMN_WIDTH = 28
# The least a cut column keeps, its ellipsis included.
_CUT_COLUMN_MIN = 12
# Set by --wide: lists print every column, every cell whole, wrapped over as many lines as it takes.
_wide = False


def wide_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--wide for a list command: every column and every cell whole."""

    def remember(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        global _wide  # noqa: PLW0603 - one command per process; the flag is that command's
        _wide = value

    return click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=remember,
        help="Every column, every cell whole, wrapped over several lines (on a terminal a list"
        " prints one line per row: the columns that fit, long cells cut with …).",
    )(command)


def _fit(
    texts: list[list[str]], width: int, drop_order: Sequence[int]
) -> tuple[list[int], list[int] | None]:
    """The columns a terminal of `width` shows, one line per row, and their widths: columns are
    left out in `drop_order` until the rest fit, narrow columns keeping their width and the wide
    ones sharing what is left, each at least _CUT_COLUMN_MIN (None: even the last ones do not
    fit; rich then shrinks every column evenly)."""
    from rich.cells import cell_len

    natural = [max(cell_len(text) for text in column) for column in texts]
    shown = list(range(len(texts)))
    for dropped in [None, *drop_order]:
        if dropped is not None:
            shown.remove(dropped)
        widths = [natural[i] for i in shown]
        room = width - (3 * len(widths) + 1)  # borders and one space of padding each side
        if sum(widths) <= room:
            return shown, widths
        cut = sorted(
            (i for i, w in enumerate(widths) if w > _KEPT_COLUMN_WIDTH), key=widths.__getitem__
        )
        left = room - sum(w for i, w in enumerate(widths) if i not in cut)
        if cut and left >= _CUT_COLUMN_MIN * len(cut):
            for done, i in enumerate(cut):
                widths[i] = min(widths[i], left // (len(cut) - done))
                left -= widths[i]
            return shown, widths
    return shown, None


def render_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    no_wrap: Sequence[str] = (),
    drop_order: Sequence[str] = (),
) -> str:
    """The table as the text emit_table would print, without printing it: a command that changes
    state renders before it commits, so a rendering error changes nothing."""
    texts = [
        [visible(column)] + [visible(text_of(row[i])) for row in rows]
        for i, column in enumerate(columns)
    ]
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    # Styled only on a terminal and without NO_COLOR; markup=False: no string printed through it
    # is ever read as rich markup.
    terminal = sys.stdout.isatty()
    plain = not terminal or bool(os.environ.get("NO_COLOR"))
    out = Console(
        file=buffer,
        soft_wrap=True,
        width=None if terminal else _UNLIMITED_WIDTH,
        color_system=None if plain else "auto",
        force_terminal=not plain,
        highlight=False,
        markup=False,
        emoji=False,
    )
    table = Table(title=Text(visible(title)) if title else None, title_justify="left")
    if terminal and not _wide and list(columns) != ["field", "value"]:
        order = [list(columns).index(name) for name in drop_order]
        shown, widths = _fit(texts, out.width, order)
        left_out = [columns[i] for i in range(len(columns)) if i not in shown]
        if left_out:
            note = f"not shown at this width: {', '.join(left_out)} (--wide)"
            table.caption = Text(textwrap.fill(note, max(out.width, 20)))
            table.caption_justify = "left"
        for n, i in enumerate(shown):
            max_width = widths[n] if widths is not None else None
            table.add_column(
                Text(texts[i][0]), no_wrap=True, overflow="ellipsis", max_width=max_width
            )
    else:
        shown = list(range(len(columns)))
        for i, column in enumerate(columns):
            # fold: a long word (a key, compact JSON) goes on over the next lines of its cell
            # on a narrow terminal instead of being cut with an ellipsis
            table.add_column(Text(texts[i][0]), no_wrap=column in no_wrap, overflow="fold")
    for r in range(len(rows)):
        table.add_row(*(Text(texts[i][r + 1]) for i in shown))
    out.print(table)
    return buffer.getvalue()


def write(rendered: str) -> None:
    sys.stdout.write(rendered)
    sys.stdout.flush()


def emit_table(*args: Any, **kwargs: Any) -> None:
    """render_table's arguments, printed."""
    write(render_table(*args, **kwargs))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def emit_record(title: str, record: dict[str, Any], as_json: bool) -> None:
    """One row shown whole (`... show`): a JSON object, or a table of fields and values."""
    if as_json:
        emit_json(record)
    else:
        emit_table(title, ["field", "value"], list(record.items()))


# -- bounded output ---------------------------------------------------------------------------

# A text table is printed in tables of at most this many rows, so that its rendering holds no more.
TABLE_PAGE_ROWS = 500
# Rows fetched from the server at a time by a streaming command.
FETCH_ROWS = 100


def emit_streamed(
    conn: psycopg.Connection[Any],
    cursor_name: str,
    query: Any,
    params: Sequence[Any],
    title: str,
    drop_order: Sequence[str],
    as_json: bool,
) -> int:
    """The rows of `query` from a server-side cursor, FETCH_ROWS at a time, each printed as it
    comes, so neither the rows nor the output are ever held whole; returns how many. JSON is
    written exactly as emit_json prints the list; a table in tables of at most TABLE_PAGE_ROWS
    rows, the first with the title. The column names are the query's."""
    count = 0
    with conn.cursor(name=cursor_name) as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query, params)
        columns = [column.name for column in cursor.description or []]
        if as_json:
            for row in cursor:
                text = render_json(dict(zip(columns, row, strict=True)))[:-1]
                sys.stdout.write(("[\n  " if count == 0 else ",\n  ") + text.replace("\n", "\n  "))
                count += 1
            write("[]\n" if count == 0 else "\n]\n")
            return count
        while True:
            page = cursor.fetchmany(TABLE_PAGE_ROWS)
            if page or count == 0:
                write(
                    render_table(title if count == 0 else "", columns, page, drop_order=drop_order)
                )
            count += len(page)
            if len(page) < TABLE_PAGE_ROWS:
                return count
