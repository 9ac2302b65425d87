"""What every kind of the one outbox (guard.deliveries) keeps, one table of kinds: a channel
paused after a failure sends none while the pause lasts and the one queued once it is over, once
(a second dispatcher and a second round send nothing); a failed send is retried after its
backoff, and given up after the last attempt. Real PostgreSQL, stdout and a webhook."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest

from guard.ops.dispatch import Dispatcher, DispatchSettings, RunStats, StdoutSink, WebhookSink
from tests.dispatch.conftest import Webhook, insert_alerts
from tests.dispatch.test_report_delivery import _store_report, _today
from tests.dispatch.test_resolved import FAST


@dataclass(frozen=True)
class Kind:
    name: str  # guard.deliveries.kind
    message_type: str  # the stdout line's "type"
    settings: DispatchSettings  # the run that sends it on stdout
    # after a first round (subscriptions made, alerts delivered): what makes one to send
    make: Callable[[str], None]
    # how many a run sent
    count: Callable[[RunStats], int] | None = None

    def sent_by(self, stats: RunStats) -> int:
        return self.count(stats) if self.count else stats.notices_sent.get(self.name, 0)


def _review_item(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT guard.enqueue_review(7, 1, NULL, 'booking_outcome_unknown')")


def _resolve_the_alert(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'fixed'"
        )


def _alert(db_url: str) -> None:
    insert_alerts(db_url, 1)


def _report(db_url: str) -> None:
    _store_report(db_url, _today(db_url) - timedelta(days=1))


KINDS = [
    Kind(
        "alert",
        "alert",
        FAST,
        _alert,
        lambda stats: stats.alerts_delivered,
    ),
    Kind(
        "review_notice",
        "review_item",
        dataclasses.replace(FAST, review_priorities=frozenset({0})),
        _review_item,
    ),
    Kind(
        "alert_resolved",
        "resolved",
        dataclasses.replace(FAST, resolved_channels=frozenset({"stdout"})),
        _resolve_the_alert,
    ),
    Kind(
        "report",
        "report",
        dataclasses.replace(FAST, report_channels=frozenset({"stdout"})),
        _report,
    ),
]


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_a_paused_channel_sends_none_until_its_pause_ends_then_once(
    db_url: str, kind: Kind
) -> None:
    stream = io.StringIO()
    dispatcher = Dispatcher(db_url, [(StdoutSink(stream), 0)], kind.settings)
    insert_alerts(db_url, 1)
    dispatcher.run_once()  # subscribes; the alert goes out
    dispatcher.stats = RunStats()
    stream.seek(0)
    stream.truncate()

    def sent() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [line for line in lines if line["type"] == kind.message_type]

    kind.make(db_url)
    channel = dispatcher._channels[0]
    channel.paused_until = time.monotonic() + 600
    dispatcher.run_once()
    assert sent() == [], "sent during the pause"
    assert kind.sent_by(dispatcher.stats) == 0

    channel.paused_until = time.monotonic() - 1
    dispatcher.run_once()
    assert len(sent()) == 1 and kind.sent_by(dispatcher.stats) == 1
    Dispatcher(db_url, [(StdoutSink(stream), 0)], kind.settings).run_once()
    dispatcher.run_once()
    assert len(sent()) == 1, "sent twice"


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_a_failed_send_is_retried_after_its_backoff_then_given_up(
    db_url: str, webhook: Webhook, kind: Kind
) -> None:
    settings = dataclasses.replace(kind.settings, max_attempts=2)
    if kind.name == "alert_resolved":
        settings = dataclasses.replace(settings, resolved_channels=frozenset({"webhook"}))
    if kind.name == "report":
        settings = dataclasses.replace(settings, report_channels=frozenset({"webhook"}))
    insert_alerts(db_url, 1)
    Dispatcher(db_url, [(WebhookSink(webhook.url, timeout_s=1.0), 0)], settings).run_once()
    kind.make(db_url)

    def attempt() -> tuple[int, list[tuple[object, ...]]]:
        with psycopg.connect(db_url, autocommit=True) as conn:  # its backoff is over
            conn.execute("UPDATE guard.deliveries SET next_attempt_at = now()")
        webhook.fail_next = 1
        sink = WebhookSink(webhook.url, timeout_s=1.0)
        stats = Dispatcher(db_url, [(sink, 0)], settings).run_once()
        with psycopg.connect(db_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT status, attempts, last_error IS NOT NULL FROM guard.deliveries"
                " WHERE kind = %s AND status <> 'delivered'",
                (kind.name,),
            ).fetchall()
        return stats.gave_up, rows

    assert attempt() == (0, [("pending", 1, True)])
    assert attempt() == (1, [("failed", 2, True)]), "given up after the last attempt"
