"""What every kind of the one outbox (guard.deliveries) keeps, one table of kinds: a channel
paused after a failure sends none while the pause lasts and the one queued once it is over, once
(a second dispatcher and a second round send nothing). Real PostgreSQL, stdout."""

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

from guard.ops.dispatch import Dispatcher, DispatchSettings, StdoutSink
from tests.dispatch.conftest import insert_alerts
from tests.dispatch.test_report_delivery import _store_report, _today
from tests.dispatch.test_resolved import FAST


@dataclass(frozen=True)
class Kind:
    name: str  # guard.deliveries.kind
    message_type: str  # the stdout line's "type"
    settings: DispatchSettings  # the run that sends it on stdout
    # after a first round (subscriptions made, alerts delivered): what makes one to send
    make: Callable[[str], None]


def _review_item(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT guard.enqueue_review(7, 1, NULL, 'booking_outcome_unknown')")


def _resolve_the_alert(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'fixed'"
        )


def _report(db_url: str) -> None:
    _store_report(db_url, _today(db_url) - timedelta(days=1))


KINDS = [
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

    def sent() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [line for line in lines if line["type"] == kind.message_type]

    kind.make(db_url)
    channel = dispatcher._channels[0]
    channel.paused_until = time.monotonic() + 600
    dispatcher.run_once()
    assert sent() == [], "sent during the pause"
    assert dispatcher.stats.notices_sent.get(kind.name, 0) == 0

    channel.paused_until = time.monotonic() - 1
    dispatcher.run_once()
    assert len(sent()) == 1 and dispatcher.stats.notices_sent[kind.name] == 1
    Dispatcher(db_url, [(StdoutSink(stream), 0)], kind.settings).run_once()
    dispatcher.run_once()
    assert len(sent()) == 1, "sent twice"
