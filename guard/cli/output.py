"""Human tables by default, JSON for scripts: the one place output is formatted.

Tables are never cut: on a terminal they fit its width, anywhere else (a pipe, a file) they keep
their full width, without styling. NO_COLOR (https://no-color.org) turns every style off, bold
included. JSON times are ISO 8601 with their offset (`2026-11-22T09:00:00+00:00`), one format
for every command."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import click
from rich.console import Console
from rich.table import Table

# Wider than any row a command prints: off a terminal, rich must never wrap or cut.
_UNLIMITED_WIDTH = 1_000_000


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=_json_value))


def console() -> Console:
    """Where tables go: stdout, styled only on a terminal and without NO_COLOR."""
    terminal = sys.stdout.isatty()
    plain = not terminal or bool(os.environ.get("NO_COLOR"))
    return Console(
        file=sys.stdout,
        soft_wrap=True,
        width=None if terminal else _UNLIMITED_WIDTH,
        color_system=None if plain else "auto",
        highlight=not plain,
        emoji=False,
    )


def emit_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console().print(table)
