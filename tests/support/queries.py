"""One query on a connection of its own: for tests that read what other processes wrote."""

from __future__ import annotations

from typing import Any

import psycopg

Params = tuple[Any, ...] | list[Any]


def fetch_all(url: str, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def fetch_one(url: str, query: str, params: Params = ()) -> tuple[Any, ...]:
    """The row `query` returns; a query that returns none fails the test."""
    [row] = fetch_all(url, query, params)
    return row


def execute(url: str, *statements: str) -> None:
    """Each statement in order, each committed on its own (autocommit): for setting a database
    up."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
