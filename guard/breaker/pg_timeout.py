"""``statement_timeout`` for PostgreSQL work inside a guarded call: a sync call that times out
only stops waiting, so the server must cancel the statement itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from guard import queries


@contextmanager
def statement_timeout(conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
    """Set ``statement_timeout`` for the current transaction (``SET LOCAL`` semantics).

    Must be used inside a transaction (psycopg's default non-autocommit mode or
    ``conn.transaction()``); the setting ends with the transaction.
    """
    milliseconds = max(1, round(seconds * 1000))
    conn.execute(queries.SET_STATEMENT_TIMEOUT, (f"{milliseconds}ms",), prepare=False)
    yield
