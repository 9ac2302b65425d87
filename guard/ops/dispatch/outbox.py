"""What `guard watch` sends, from one outbox (guard.deliveries), once per (kind, subject,
channel): alerts (at least once, retried with backoff), and notices once. A kind is a source,
which queues its subjects on the run's channels, a loader and a renderer; claiming, planning the
messages of a batch, settling, retries, the lease, the rate window, pauses and unrenderable
subjects are the pump's, the same for every kind (Dispatcher._pump). docs/alerts.md, "Resolved
notifications", "Review notices" and "Daily reports"."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from guard import queries
from guard.connection import scalar
from guard.masking import mask_phone_numbers
from guard.ops.daily_report import render_markdown, stored_report
from guard.ops.dispatch.message import (
    AlertRow,
    Message,
    ReviewRow,
    alert_message,
    neutralise,
    resolved_message,
    review_message,
)


class DeliveryStore:
    """The outbox (guard.deliveries) through its SQL functions. Every call is one statement in
    autocommit mode, i.e. its own transaction: a claim is committed before the send, a delivery
    is marked right after it, and no transaction is ever open while a message is sent
    (idle_in_transaction_session_timeout never fires). Each statement is fitted to the login's
    limits (guard.ops.login_limits)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit:
            raise ValueError("DeliveryStore needs an autocommit connection")
        self.conn = conn

    def enqueue(
        self, channels: Sequence[str], after: int = 0, limit: int | None = None
    ) -> tuple[int, int | None]:
        """Queue the deliveries of the next `limit` undelivered alerts after alert `after` (None:
        all): the rows added, and the last alert looked at (None: none was left)."""
        row = self.conn.execute(
            queries.ENQUEUE_ALERT_DELIVERIES, (list(channels), after, limit)
        ).fetchone()
        return (int(row[0]), None if row[1] is None else int(row[1])) if row else (0, None)

    def alerts(self, alert_ids: Sequence[int]) -> list[AlertRow]:
        """What a message shows of the claimed alerts, oldest first, read by the one loader
        (guard.alerts_for_delivery): the message cut to 4000 characters and large details as an
        excerpt, so a batch is bounded in bytes."""
        rows = self.conn.execute(queries.ALERTS_FOR_DELIVERY, (list(alert_ids),)).fetchall()
        return [AlertRow(*row) for row in rows]

    def count(self, query: str, *params: Any) -> int:
        """One statement that returns how many rows it changed, skipped or checked."""
        return int(scalar(self.conn, query, params) or 0)

    def review_notice_items(self, item_ids: Sequence[int]) -> list[ReviewRow]:
        rows = self.conn.execute(queries.REVIEW_NOTICE_ITEMS, (list(item_ids),)).fetchall()
        return [ReviewRow(*row) for row in rows]

    def enqueue_deliveries(
        self, kind: str, channels: Sequence[str], subjects: Sequence[int]
    ) -> int:
        return self.count(queries.ENQUEUE_DELIVERIES, kind, list(channels), list(subjects))

    def claim(
        self,
        kind: str,
        channel: str,
        worker: str,
        limit: int,
        lease_s: float,
        digest_hours: int | None = None,
    ) -> tuple[dict[int, int], datetime | None]:
        """The channel's due deliveries of the kind: subject -> its attempts so far, oldest
        first; with digest_hours, the alerts for a digest and the end of the period they are
        sent for (else None)."""
        rows = self.conn.execute(
            queries.CLAIM_DELIVERIES, (kind, channel, worker, limit, lease_s, digest_hours)
        ).fetchall()
        return {int(row[0]): int(row[1]) for row in rows}, rows[0][2] if rows else None

    def settle(
        self,
        kind: str,
        channel: str,
        subjects: Sequence[int],
        error: str | None = None,
        *,
        backoff_base_s: float = 0.0,
        backoff_max_s: float = 0.0,
        max_attempts: int = 1,
    ) -> int:
        """Mark the deliveries delivered (error None: the rows marked), or record a failed
        attempt, retried after backoff until max_attempts (the rows that gave up)."""
        args = (kind, channel, list(subjects), error, backoff_base_s, backoff_max_s, max_attempts)
        return self.count(queries.SETTLE_DELIVERIES, *args)

    def release(self, channel: str, worker: str) -> int:
        return self.count(queries.RELEASE_DELIVERIES, channel, worker)

    def seconds_until_due(self, pending: Sequence[tuple[str, str]]) -> dict[str, float]:
        """Per channel with pending deliveries of the (kind, channel) pairs given: seconds until
        the next one is due (a claim of another dispatcher counts from the end of its lease).
        Two bounded reads per pair, not the backlog: the first unclaimed row in the due index's
        order, and the claimed rows (deliveries_claimed_idx: a batch per dispatcher)."""
        kinds, channels = [kind for kind, _ in pending], [channel for _, channel in pending]
        rows = self.conn.execute(queries.SECONDS_UNTIL_DELIVERY_DUE, (kinds, channels)).fetchall()
        return {str(channel): max(0.0, float(due)) for channel, due in rows}

    def counts(self, channels: Sequence[str]) -> dict[str, int]:
        rows = self.conn.execute(queries.DELIVERY_STATUS_COUNTS, (list(channels),)).fetchall()
        return {str(status): int(n) for status, n in rows}

    def retrying(self, channels: Sequence[str]) -> dict[str, int]:
        """Per channel, the pending deliveries that failed and wait for their retry."""
        rows = self.conn.execute(queries.RETRYING_DELIVERY_COUNTS, (list(channels),)).fetchall()
        return {str(channel): int(n) for channel, n in rows}


@dataclass(frozen=True)
class OutboxKind:
    name: str  # guard.deliveries.kind
    label: str  # what one is, in logs and errors: "review notice"
    subject: str  # what its subject is, in logs: "item"
    # the source: queue what is new on these channels; returns the deliveries created (None:
    # alerts, which the dispatcher queues in batches, Dispatcher._enqueue)
    enqueue: Callable[[DeliveryStore, Sequence[str]], int] | None
    # the claimed subjects (oldest first) -> what render takes, one each, in the same order
    load: Callable[[DeliveryStore, Sequence[int]], Sequence[Any]]
    render: Callable[[Any], Message]
    # alerts past the rate window's room share a summary (plan_messages); a notice waits
    summarised: bool = False


@dataclass(frozen=True)
class Outbox:
    """A kind delivered to some of a run's channels."""

    kind: OutboxKind
    channels: frozenset[str]


def review_notices(priorities: Collection[int]) -> OutboxKind:
    """ "A review item was opened", for the items of these priorities."""
    return OutboxKind(
        "review_notice",
        "review notice",
        "item",
        enqueue=lambda store, channels: store.count(
            queries.ENQUEUE_REVIEW_NOTICES, list(channels), sorted(priorities)
        ),
        load=lambda store, subjects: store.review_notice_items(subjects),
        render=review_message,
    )


def report_day(subject: int) -> date:
    """A report delivery's subject (the day as yyyymmdd) as its day."""
    return date(subject // 10000, subject // 100 % 100, subject % 100)


def _load_reports(store: DeliveryStore, subjects: Sequence[int]) -> list[Any]:
    # a database error while reading a report is an outage, not a report that cannot be rendered
    return [(day, stored_report(store.conn, day)) for day in map(report_day, subjects)]


def report_message(day: date, rows: list[dict[str, Any]]) -> Message:
    """The message delivering the stored report of `day` (rows: guard.daily_report_view's, one
    per company; none when retention deleted the day since it was queued): the Markdown `guard
    report --markdown` prints (the same rendering), phone numbers masked by Booking Guard's one
    rule and every line made inert for chat tools and mail clients, as alert texts are."""
    subject = f"Booking Guard daily report, {day} (UTC)"
    if not rows:
        text = f"The daily report of {day} (UTC) is no longer stored (deleted by retention)."
        payload = {"type": "report", "report_date": day.isoformat(), "missing": True}
        return Message("report", (), payload, subject, text)
    # masked and inert line by line: the table stays one row per line
    markdown = render_markdown(day, rows).splitlines()
    text = "\n".join(neutralise(mask_phone_numbers(line)) for line in markdown)
    payload = {
        "type": "report",
        "report_date": day.isoformat(),
        "companies": len(rows),
        "markdown": text,
    }
    return Message("report", (), payload, subject, text)


REPORTS = OutboxKind(
    "report",
    "daily report",
    "report day",
    enqueue=lambda store, channels: store.count(queries.ENQUEUE_REPORT_DELIVERIES, list(channels)),
    load=_load_reports,
    render=lambda loaded: report_message(*loaded),
)
ALERTS = OutboxKind(
    "alert",
    "alert",
    "alert",
    enqueue=None,
    load=lambda store, subjects: store.alerts(subjects),
    render=alert_message,
    summarised=True,
)
RESOLVED = OutboxKind(
    "alert_resolved",
    "resolved notice",
    "alert",
    enqueue=lambda store, channels: store.count(queries.ENQUEUE_RESOLVED_NOTICES, list(channels)),
    load=lambda store, subjects: store.alerts(subjects),
    render=resolved_message,
)
# The kinds `guard watch` sends, and what RunStats calls the count of each sent (else
# <name>s_sent).
KIND_NAMES = ("review_notice", REPORTS.name, RESOLVED.name)
SENT_STATS = {RESOLVED.name: "resolved_sent"}
