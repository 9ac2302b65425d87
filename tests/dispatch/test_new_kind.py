"""A new kind of once-only notice is one source and one renderer: the pump claims, sends,
settles and marks the unrenderable failed for it as for review notices and reports
(guard/ops/dispatch/outbox.py)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import Message
from guard.ops.dispatch.outbox import DeliveryStore, Outbox, OutboxKind
from guard.ops.dispatch.sinks import WebhookSink
from tests.dispatch.conftest import Webhook

SETTINGS = DispatchSettings(lease_s=3.0, send_timeout_s=1.0, worker_id="test")


def _greeting(subject: int) -> Message:
    if subject == 13:
        raise ValueError("unlucky")
    return Message("greeting", (), {"n": subject}, f"hello {subject}", f"hello {subject}")


def test_a_kind_of_its_own_goes_out_once(db_url: str, webhook: Webhook) -> None:
    def source(store: DeliveryStore, channels: Sequence[str]) -> int:
        return store.enqueue_deliveries("greeting", channels, [13, 2, 1])

    kind = OutboxKind(
        "greeting", "greeting", "number", source, lambda _store, subjects: subjects, _greeting
    )
    outboxes = [Outbox(kind, frozenset({"webhook"}))]
    sinks = [(WebhookSink(webhook.url, timeout_s=1.0), 0)]
    stats = Dispatcher(db_url, sinks, SETTINGS, outboxes).run_once()
    assert Dispatcher(db_url, sinks, SETTINGS, outboxes).run_once().notices_sent == {"greeting": 0}

    assert [body["text"] for body in webhook.bodies] == ["hello 1", "hello 2"]
    assert stats.notices_sent == {"greeting": 2} and stats.unrenderable == 1
    assert stats.as_dict()["greetings_sent"] == 2
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT subject, status, last_error FROM guard.deliveries WHERE kind = 'greeting'"
            " ORDER BY subject"
        ).fetchall() == [
            (1, "delivered", None),
            (2, "delivered", None),
            (13, "failed", "cannot render greeting: ValueError: unlucky"),
        ]
