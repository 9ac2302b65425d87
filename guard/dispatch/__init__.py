"""`guard watch`: delivers the alert outbox (guard.alerts) to stdout, a Slack-compatible
webhook, email and Alertmanager, at least once, with per-channel throttling and retries.
See docs/alerts.md."""

from guard.dispatch.loop import Dispatcher, DispatchSettings, RunStats
from guard.dispatch.message import Message, mask_phone_numbers
from guard.dispatch.sinks import (
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
