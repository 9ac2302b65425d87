"""`guard watch`: delivers the outbox (guard.deliveries) to stdout, a Slack-compatible
webhook, email and Alertmanager, at least once, with per-channel throttling and retries.
See docs/alerts.md."""

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings, RunStats
from guard.ops.dispatch.message import Message, mask_phone_numbers
from guard.ops.dispatch.sinks import (
    AlertmanagerSink,
    DeliveryError,
    EmailSink,
    Sink,
    StdoutSink,
    WebhookSink,
)

__all__ = [
    "AlertmanagerSink",
    "DeliveryError",
    "DispatchSettings",
    "Dispatcher",
    "EmailSink",
    "Message",
    "RunStats",
    "Sink",
    "StdoutSink",
    "WebhookSink",
    "mask_phone_numbers",
]
