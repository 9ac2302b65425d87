"""What `guard watch` sends, from one outbox (guard.deliveries), once per (kind, subject,
channel): alerts (at least once, retried with backoff), and notices once. A kind is a source,
which queues its subjects on the run's channels, a loader and a renderer; claiming, planning the
messages of a batch, settling, retries, the lease, the rate window, pauses and unrenderable
subjects are the pump's, the same for every kind (Dispatcher._pump). docs/alerts.md, "Resolved
notifications", "Review notices" and "Daily reports"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from guard import queries
from guard.ops.daily_report import stored_report
from guard.ops.dispatch.message import (
    Message,
    Plan,
    plan_messages,
    render,
    resolved_message,
    review_message,
)
from guard.ops.dispatch.report import report_message
from guard.ops.dispatch.store import DeliveryStore


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

    def plan(
        self, subjects: Sequence[int], loaded: Sequence[Any], room: int | None, channel: str
    ) -> Plan:
        """The messages for a batch on `channel`, with room for `room` (None: no limit), and
        the subjects that cannot be rendered, with why. A notice is a message of its own (never
        claimed past the room)."""
        if self.summarised:
            return plan_messages(loaded, room, channel)
        plan = Plan([], {})
        for subject, row in zip(subjects, loaded, strict=True):
            try:
                message = self.render(row)
            except Exception as error:  # one broken notice must not stop the others
                plan.unrenderable[subject] = f"{type(error).__name__}: {error}"
                continue
            plan.messages.append(dataclasses.replace(message, alert_ids=(subject,)))
        return plan


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
    render=render,
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
