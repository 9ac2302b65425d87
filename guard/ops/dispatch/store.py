"""The delivery table (guard.alert_deliveries) through its SQL functions. Every call is one
statement in autocommit mode, i.e. its own transaction: a claim is committed before the send,
a delivery is marked right after it, and no transaction is ever open while a message is sent
(idle_in_transaction_session_timeout never fires). `within_limits` fits each statement to the
login's statement_timeout and lock_timeout (docs/alerts.md, "The login's limits")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from guard import queries
from guard.errors import GuardError
from guard.ops.dispatch.message import AlertRow, ReviewRow

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


class DeliveryStore:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit:
            raise ValueError("DeliveryStore needs an autocommit connection")
        self.conn = conn

    def drain_detection_queue(self) -> int:
        """Check the due calls of guard.detection_queue (one batch, one transaction); how many."""
        row = self.conn.execute(queries.DRAIN_DETECTION_QUEUE).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def seconds_until_detection_due(self) -> float | None:
        """Until the next queued call is due (<= 0: now), or None when none is queued."""
        row = self.conn.execute(queries.SECONDS_UNTIL_DETECTION_DUE).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def enqueue(
        self, channels: Sequence[str], after: int = 0, limit: int | None = None
    ) -> tuple[int, int | None]:
        """Queue the deliveries of the next `limit` undelivered alerts after alert `after` (None:
        all): the rows added, and the last alert looked at (None: none was left)."""
        row = self.conn.execute(
            queries.ENQUEUE_ALERT_DELIVERIES, (list(channels), after, limit)
        ).fetchone()
        return (int(row[0]), None if row[1] is None else int(row[1])) if row else (0, None)

    def claim(self, channel: str, worker: str, limit: int, lease_s: float) -> list[AlertRow]:
        return self.claim_digest(channel, worker, None, limit, lease_s)[0]

    def alerts(self, attempts: Mapping[int, int]) -> list[AlertRow]:
        """What a message shows of the claimed alerts (alert id -> its attempts so far), oldest
        first, read by the one loader (guard.alerts_for_delivery): the message cut to 4000
        characters and large details as an excerpt, so a batch is bounded in bytes."""
        if not attempts:
            return []
        rows = self.conn.execute(queries.ALERTS_FOR_DELIVERY, (list(attempts),)).fetchall()
        return [AlertRow(row[0], attempts[row[0]], *row[1:]) for row in rows]

    def _count(self, query: str, *params: Any) -> int:
        """One statement that returns how many rows it changed."""
        row = self.conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    def enqueue_resolved_notices(self, channels: Sequence[str]) -> int:
        return self._count(queries.ENQUEUE_RESOLVED_NOTICES, list(channels))

    def enqueue_review_notices(self, channels: Sequence[str], priorities: Sequence[int]) -> int:
        return self._count(queries.ENQUEUE_REVIEW_NOTICES, list(channels), list(priorities))

    def review_notice_items(self, item_ids: Sequence[int]) -> list[ReviewRow]:
        rows = self.conn.execute(queries.REVIEW_NOTICE_ITEMS, (list(item_ids),)).fetchall()
        return [ReviewRow(*row) for row in rows]

    def enqueue_reports(self, channels: Sequence[str]) -> int:
        return self._count(queries.ENQUEUE_REPORT_DELIVERIES, list(channels))

    def enqueue_deliveries(
        self, kind: str, channels: Sequence[str], subjects: Sequence[int]
    ) -> int:
        return self._count(queries.ENQUEUE_DELIVERIES, kind, list(channels), list(subjects))

    def claim_deliveries(
        self, kind: str, channel: str, worker: str, limit: int, lease_s: float
    ) -> list[int]:
        rows = self.conn.execute(
            queries.CLAIM_DELIVERIES, (kind, channel, worker, limit, lease_s)
        ).fetchall()
        return [int(row[0]) for row in rows]

    def settle_deliveries(
        self, kind: str, channel: str, subjects: Sequence[int], error: str | None = None
    ) -> int:
        return self._count(queries.SETTLE_DELIVERIES, kind, channel, list(subjects), error)

    def claim_digest(
        self, channel: str, worker: str, period_hours: int | None, limit: int, lease_s: float
    ) -> tuple[list[AlertRow], datetime | None]:
        """The channel's alerts due (in a digest of period_hours: and the end of the period they
        are sent for; None: each alert its own message), one claim for both."""
        rows = self.conn.execute(
            queries.CLAIM_ALERT_DELIVERIES,
            (channel, worker, limit, lease_s, period_hours),
        ).fetchall()
        period_end = rows[0][-1] if rows else None
        return self.alerts({int(row[0]): int(row[1]) for row in rows}), period_end

    def skip_below(self, channel: str, min_severity: str, actor: str) -> int:
        """Mark skipped the channel's pending deliveries below its minimum severity (audited in
        guard.delivery_skips)."""
        return self._count(queries.SKIP_ALERT_DELIVERIES_BELOW, channel, min_severity, actor)

    def complete(
        self, channel: str, alert_ids: Sequence[int], period_end: datetime | None = None
    ) -> int:
        """Mark the alerts delivered on the channel; with period_end, in the digest of that period
        (recorded in guard.alert_digests with them)."""
        if period_end is None:
            return self._count(queries.COMPLETE_ALERT_DELIVERIES, channel, list(alert_ids))
        return self._count(queries.COMPLETE_ALERT_DIGEST, channel, period_end, list(alert_ids))

    def fail(
        self,
        channel: str,
        alert_ids: Sequence[int],
        error: str,
        *,
        backoff_base_s: float,
        backoff_max_s: float,
        max_attempts: int,
    ) -> int:
        ids = list(alert_ids)
        args = (channel, ids, error, backoff_base_s, backoff_max_s, max_attempts)
        return self._count(queries.FAIL_ALERT_DELIVERIES, *args)

    def skip(self, seen_before: datetime, channels: Sequence[str], actor: str) -> int:
        """Mark older pending deliveries skipped (guard.skip_alert_deliveries; audited)."""
        return self._count(queries.SKIP_ALERT_DELIVERIES, seen_before, list(channels), actor)

    def release(self, channel: str, worker: str) -> int:
        return self._count(queries.RELEASE_ALERT_DELIVERIES, channel, worker)

    def seconds_until_due(self, channels: Sequence[str]) -> dict[str, float]:
        """Per channel with pending deliveries: seconds until the next one is due (a claim of
        another dispatcher counts from the end of its lease). Two bounded reads per channel, not
        the backlog: the first unclaimed row in the due index's order, and the claimed rows
        (alert_deliveries_claimed_idx: a batch per dispatcher)."""
        rows = self.conn.execute(queries.SECONDS_UNTIL_DELIVERY_DUE, (list(channels),)).fetchall()
        return {str(channel): max(0.0, float(due)) for channel, due in rows}

    def counts(self, channels: Sequence[str]) -> dict[str, int]:
        rows = self.conn.execute(queries.DELIVERY_STATUS_COUNTS, (list(channels),)).fetchall()
        return {str(status): int(n) for status, n in rows}

    def retrying(self, channels: Sequence[str]) -> dict[str, int]:
        """Per channel, the pending deliveries that failed and wait for their retry."""
        rows = self.conn.execute(queries.RETRYING_DELIVERY_COUNTS, (list(channels),)).fetchall()
        return {str(channel): int(n) for channel, n in rows}
