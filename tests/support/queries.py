"""One query on a connection of its own: for tests that read what other processes wrote."""

from __future__ import annotations

from typing import Any

import psycopg

Params = tuple[Any, ...] | list[Any]


def fetch_all(url: str, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def fetch_texts(url: str, query: str, params: Params = ()) -> set[str]:
    """The first column of the rows `query` returns, as text."""
    return {str(row[0]) for row in fetch_all(url, query, params)}


def fetch_one(url: str, query: str, params: Params = ()) -> tuple[Any, ...]:
    """The row `query` returns; a query that returns none fails the test."""
    [row] = fetch_all(url, query, params)
    return row


def text_on(conn: psycopg.Connection[Any], query: str, params: Params, what: str) -> str:
    """The value `query` returns on `conn` (first column of its row), as text; no row fails the
    test naming `what`."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, what
    return str(row[0])


def execute(url: str, *statements: str) -> None:
    """Each statement in order, each committed on its own (autocommit): for setting a database
    up."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
