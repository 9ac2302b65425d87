"""What every kind of the one outbox (guard.deliveries) keeps, one table of kinds: a channel
paused after a failure sends none while the pause lasts and the one queued once it is over, once
(a second dispatcher and a second round send nothing); a failed send is retried after its
backoff, and given up after the last attempt. Real PostgreSQL, stdout and a webhook."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest

from guard import queries
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings, RunStats
from guard.ops.dispatch.outbox import DeliveryStore
from guard.ops.dispatch.sinks import StdoutSink, WebhookSink
from tests.dispatch.conftest import Webhook, insert_alerts, wait_for
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


def _on_webhook(kind: Kind) -> DispatchSettings:
    """The kind's settings with the webhook channel where they name stdout."""
    if kind.name == "alert_resolved":
        return dataclasses.replace(kind.settings, resolved_channels=frozenset({"webhook"}))
    if kind.name == "report":
        return dataclasses.replace(kind.settings, report_channels=frozenset({"webhook"}))
    return kind.settings


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_a_failed_send_is_retried_after_its_backoff_then_given_up(
    db_url: str, webhook: Webhook, kind: Kind
) -> None:
    settings = dataclasses.replace(_on_webhook(kind), max_attempts=2)
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


@pytest.mark.serial
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_a_retry_goes_out_when_its_backoff_ends_not_at_the_next_poll(
    db_url: str, webhook: Webhook, kind: Kind
) -> None:
    settings = dataclasses.replace(_on_webhook(kind), poll_interval_s=60.0)
    sinks = [(WebhookSink(webhook.url, timeout_s=1.0), 0)]
    insert_alerts(db_url, 1)
    Dispatcher(db_url, sinks, settings).run_once()
    kind.make(db_url)
    sent = len(webhook.bodies)
    webhook.fail_next = 1
    dispatcher = Dispatcher(db_url, sinks, settings)
    thread = threading.Thread(target=dispatcher.run_forever)
    thread.start()
    try:
        wait_for(lambda: dispatcher.stats.failed_sends == 1, 10, "the first attempt")
        took = wait_for(lambda: len(webhook.bodies) > sent, 10, "the retry")
        assert took < 5.0, f"retried after {took:.1f} s: a backoff of 2 s at most, a 60 s poll"
    finally:
        dispatcher.stop()
        thread.join(timeout=10)
    assert kind.sent_by(dispatcher.stats) == 1 and dispatcher.stats.poll_wakeups >= 1


def test_a_rate_limited_channel_claims_only_the_notices_it_may_send(
    db_url: str, webhook: Webhook
) -> None:
    settings = dataclasses.replace(FAST, review_priorities=frozenset({0}))
    sinks = [(WebhookSink(webhook.url, timeout_s=1.0), 2)]
    Dispatcher(db_url, sinks, settings).run_once()  # subscribes
    with psycopg.connect(db_url, autocommit=True) as conn:
        for call_id in range(1, 6):
            conn.execute(
                "SELECT guard.enqueue_review(7, %s, NULL, 'booking_outcome_unknown')", (call_id,)
            )

    def versions() -> dict[int, str]:
        with psycopg.connect(db_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT subject, xmin::text FROM guard.deliveries WHERE kind = 'review_notice'"
            ).fetchall()
        return {int(subject): str(xmin) for subject, xmin in rows}

    with psycopg.connect(db_url, autocommit=True) as conn:
        assert DeliveryStore(conn).count(queries.ENQUEUE_REVIEW_NOTICES, ["webhook"], [0]) == 5
    before = versions()
    stats = Dispatcher(db_url, sinks, settings).run_once()
    after = versions()
    assert stats.notices_sent == {"review_notice": 2} and len(webhook.bodies) == 2
    untouched = [subject for subject in before if before[subject] == after[subject]]
    assert len(untouched) == 3, "a notice past the rate limit was claimed and given back"
