"""A statement fitted to the login's statement_timeout and lock_timeout (docs/alerts.md, "The
login's limits"): the outbox's pump, `guard jobs run` and the metrics scrape share it. Kept apart
from the outbox so that a scrape does not import the pump and its senders."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from guard import queries
from guard.errors import GuardError

log = logging.getLogger("guard.dispatch")

# A statement cut by the login's lock_timeout is tried again after this pause, for this long.
LOCK_RETRY_S = 0.2
LOCK_DEADLINE_S = 30.0
# A batch made smaller because statement_timeout cut it doubles again after this many that fit.
GROW_AFTER = 10

_T = TypeVar("_T")


class LoginLimit(GuardError):
    """A statement that does not fit the login's limits even at its smallest: one line."""


def login_limit(
    conn: psycopg.Connection[Any],
    what: str,
    setting: str,
    program: str,
    lock_deadline_s: float = LOCK_DEADLINE_S,
) -> LoginLimit:
    """The one line for `what` that `setting` (statement_timeout, lock_timeout) stopped: its
    value, the login, and the statement that changes it."""
    try:
        row = conn.execute(queries.LOGIN_SETTING, (setting,)).fetchone()
        value, login = (str(row[0]), str(row[1])) if row else ("?", "?")
    except psycopg.Error:
        value, login = "?", "?"
    if setting == "lock_timeout":
        reason = (
            f"another session held a lock it needs for {lock_deadline_s:g} s (each wait ended by"
            f" this login's lock_timeout = {value})"
        )
    else:
        reason = f"it takes longer than this login's {setting} = {value}"
    return LoginLimit(
        f"{program}: {what} cannot be done: {reason}; raise it for the login that runs {program}"
        f" (ALTER ROLE {sql.Identifier(login).as_string(conn)} SET {setting} = '...')"
        + (", or end the session that holds the lock" if setting == "lock_timeout" else "")
    )


@dataclass
class Batch:
    """How many items one statement handles: halved each time statement_timeout cuts it (down
    to one), doubled again, up to `largest`, after GROW_AFTER statements in a row that fit."""

    largest: int
    size: int = 0
    fitted: int = 0

    def __post_init__(self) -> None:
        self.size = self.size or self.largest


def within_limits(
    conn: psycopg.Connection[Any],
    batch: Batch | None,
    call: Callable[[int], _T],
    what: Callable[[int], str],
    program: str = "guard watch",
    stop: Callable[[], bool] = lambda: False,
    lock_deadline_s: float = LOCK_DEADLINE_S,
) -> _T:
    """call(size) in autocommit mode (or a transaction of its own), within the login's limits:
    a statement statement_timeout cut is tried again with a batch half the size, one
    lock_timeout cut after a pause (for lock_deadline_s). A batch of one that is cut, or a lock
    held past the deadline, raises the one line (LoginLimit) naming the setting. `what(size)`
    says what the statement does."""
    waiting_since: float | None = None
    while True:
        size = 1 if batch is None else batch.size
        try:
            result = call(size)
        except psycopg.errors.QueryCanceled as error:
            if conn.broken or batch is None or batch.size == 1:
                raise login_limit(conn, what(size), "statement_timeout", program) from error
            batch.size, batch.fitted = max(1, batch.size // 2), 0
            log.debug("%s: cut by statement_timeout; %d at a time now", what(size), batch.size)
            continue
        except psycopg.errors.LockNotAvailable as error:
            now = time.monotonic()
            waiting_since = now if waiting_since is None else waiting_since
            if conn.broken or stop() or now - waiting_since >= lock_deadline_s:
                limit = login_limit(conn, what(size), "lock_timeout", program, lock_deadline_s)
                raise limit from error
            time.sleep(LOCK_RETRY_S)
            continue
        if batch is not None and batch.size < batch.largest:
            batch.fitted += 1
            if batch.fitted >= GROW_AFTER:
                batch.size, batch.fitted = min(batch.largest, batch.size * 2), 0
        return result
