"""The notices `guard watch` sends once per (kind, subject, channel), from one outbox
(guard.deliveries). A kind is a source, which queues its subjects on the run's channels, and a
renderer, which turns a claimed subject into a message; claiming, settling, the lease, the rate
window, pauses and unrenderable subjects are the pump's, the same for every kind
(Dispatcher._pump_outbox). docs/alerts.md, "Resolved notifications", "Review notices" and
"Daily reports"."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from guard.ops.daily_report import stored_report
from guard.ops.dispatch.message import Message, resolved_message, review_message
from guard.ops.dispatch.report import report_message
from guard.ops.dispatch.store import DeliveryStore


@dataclass(frozen=True)
class OutboxKind:
    name: str  # guard.deliveries.kind
    label: str  # what one is, in logs and errors: "review notice"
    subject: str  # what its subject is, in logs: "item"
    # the source: queue what is new on these channels; returns the deliveries created
    enqueue: Callable[[DeliveryStore, Sequence[str]], int]
    # the claimed subjects (oldest first) -> what render takes, one each, in the same order
    load: Callable[[DeliveryStore, Sequence[int]], Sequence[Any]]
    render: Callable[[Any], Message]


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
        enqueue=lambda store, channels: store.enqueue_review_notices(channels, sorted(priorities)),
        load=lambda store, subjects: store.review_notice_items(subjects),
        render=review_message,
    )


def report_day(subject: int) -> date:
    """A report delivery's subject (the day as yyyymmdd) as its day."""
    return date(subject // 10000, subject // 100 % 100, subject % 100)


def _load_reports(store: DeliveryStore, subjects: Sequence[int]) -> list[Any]:
    # a database error while reading a report is an outage, not a report that cannot be rendered
    return [(day, stored_report(store.conn, day)) for day in map(report_day, subjects)]


REPORTS = OutboxKind(
    "report",
    "daily report",
    "report day",
    enqueue=lambda store, channels: store.enqueue_reports(channels),
    load=_load_reports,
    render=lambda loaded: report_message(*loaded),
)
RESOLVED = OutboxKind(
    "alert_resolved",
    "resolved notice",
    "alert",
    enqueue=lambda store, channels: store.enqueue_resolved_notices(channels),
    load=lambda store, subjects: store.alerts(dict.fromkeys(subjects, 0)),
    render=resolved_message,
)
# The kinds `guard watch` sends, and what RunStats calls the count of each sent (else
# <name>s_sent).
KIND_NAMES = ("review_notice", REPORTS.name, RESOLVED.name)
SENT_STATS = {RESOLVED.name: "resolved_sent"}
