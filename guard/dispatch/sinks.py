"""Where messages go: JSON lines on stdout, a Slack-compatible webhook, email over SMTP,
Alertmanager's API v2.
A sink raises DeliveryError for anything worth a retry; its text never contains a secret
(the webhook URL, the SMTP password)."""

from __future__ import annotations

import json
import smtplib
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol, TextIO

from guard.dispatch.message import Message


class DeliveryError(Exception):
    """A send failed; the delivery is retried with backoff."""


class Sink(Protocol):
    name: str

    def send(self, message: Message) -> None: ...


class StdoutSink:
    """One JSON object per line (alerts and summaries), flushed per line."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        stream = self._stream or sys.stdout
        line = json.dumps(message.payload, sort_keys=True, default=str)
        with self._lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except OSError as error:
                raise DeliveryError(f"stdout: {error.strerror or error}") from None


class WebhookSink:
    """POST `{"text": ...}` as JSON: what Slack (and Mattermost, Rocket.Chat, Teams workflows)
    accept on an incoming webhook. Any non-2xx answer or network error is retried."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must be http:// or https://")
        self._url = url
        self._timeout_s = timeout_s

    def __repr__(self) -> str:  # never show the URL: it is the secret
        return "WebhookSink(url=***)"

    def send(self, message: Message) -> None:
        _post_json(self._url, {"text": message.text}, self._timeout_s, "webhook")


class AlertmanagerSink:
    """POST each alert to Alertmanager's API v2 (`/api/v2/alerts`), so the silences, inhibition,
    grouping and routing on-call already keeps in Alertmanager apply to Booking Guard alerts.

    Labels identify the alert (a re-send after a crash has the same labels, and Alertmanager
    merges it): `alertname` is the check that raised it, `rule` its rule (one id per invariant),
    plus severity, company, entity and the alert id. We send
    an alert once, not every evaluation as Prometheus does, so `endsAt` keeps it active for
    `hold` (default 24 h) unless it is resolved earlier: an alert already resolved when it is
    sent, or a resolved notification, carries `endsAt` = the resolution time."""

    name = "alertmanager"

    def __init__(
        self, url: str, timeout_s: float = 10.0, hold: timedelta = timedelta(hours=24)
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the Alertmanager URL must be http:// or https://")
        self._endpoint = url.rstrip("/") + "/api/v2/alerts"
        self._timeout_s = timeout_s
        self._hold = hold

    def __repr__(self) -> str:  # the URL may carry basic-auth credentials
        return "AlertmanagerSink(url=***)"

    def alerts(self, message: Message) -> list[dict[str, Any]]:
        """The API v2 body for one message."""
        now = datetime.now(UTC)
        p = message.payload
        if p.get("type") not in ("alert", "resolved") or p.get("missing"):
            kind = "alert_missing" if p.get("missing") else "summary"
            labels = {"alertname": f"booking_guard_{kind}", "severity": "warning"}
            return [
                {
                    "labels": labels,
                    "annotations": {"summary": message.subject, "description": message.text},
                    "startsAt": now.isoformat(),
                    "endsAt": (now + self._hold).isoformat(),
                }
            ]
        labels = {
            "alertname": str(p["check_id"]),
            "severity": str(p["severity"]),
            "source": "booking-guard",
            "guard_alert_id": str(p["alert_id"]),
        }
        if p.get("rule_id") is not None:  # None: the alert's check was removed since
            labels["rule"] = str(p["rule_id"])
        if p.get("company_id") is not None:
            labels["company_id"] = str(p["company_id"])
        if p.get("entity_type"):
            labels["entity_type"] = str(p["entity_type"])
        if p.get("entity_id") is not None:
            labels["entity_id"] = str(p["entity_id"])
        starts = p.get("first_seen_at") or now.isoformat()
        if message.kind == "resolved" or p.get("status") not in (None, "open"):
            ends = p.get("resolved_at") or now.isoformat()
        else:
            ends = (now + self._hold).isoformat()
        return [
            {
                "labels": labels,
                "annotations": {"summary": message.subject, "description": message.text},
                "startsAt": starts,
                "endsAt": ends,
            }
        ]

    def send(self, message: Message) -> None:
        _post_json(self._endpoint, self.alerts(message), self._timeout_s, "Alertmanager")


def _post_json(url: str, payload: object, timeout_s: float, receiver: str) -> None:
    """POST payload as JSON; any failure is one DeliveryError naming the receiver, never the URL
    (it may hold a secret). Callers check the scheme (http or https) when they are built."""
    request = urllib.request.Request(  # noqa: S310 - scheme checked by the sinks' __init__
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "booking-guard"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"{receiver} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"{receiver} unreachable: {_reason(reason)}") from None


def _reason(reason: object) -> str:
    if isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(reason, OSError):
        return reason.strerror or type(reason).__name__
    return type(reason).__name__ if not isinstance(reason, str) else reason


def _domain(address: str) -> str | None:
    """The domain of `guard@example.org` or `Booking Guard <guard@example.org>`."""
    _, _, domain = address.rpartition("@")
    domain = domain.strip().rstrip(">").strip()
    return domain or None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


class EmailSink:
    """One email per message over SMTP (a fresh connection per send: alerts are rare and a
    long-lived SMTP session times out). A 4xx/5xx answer or network error is retried."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.recipients:
            raise ValueError("email needs at least one recipient")
        self._settings = settings

    def __repr__(self) -> str:
        return f"EmailSink(host={self._settings.host!r}, port={self._settings.port})"

    def send(self, message: Message) -> None:
        s = self._settings
        email = EmailMessage()
        email["From"] = s.sender
        email["To"] = ", ".join(s.recipients)
        email["Subject"] = message.subject
        # RFC 5322 requires Date:; Message-ID: lets mail clients thread, deduplicate and
        # reference an alert. smtplib adds neither. The domain is the sender's, so ids are
        # unique per sending site; a retry gets a new id (it is a new message).
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = make_msgid("booking-guard", domain=_domain(s.sender))
        email["X-Booking-Guard-Alerts"] = ",".join(str(i) for i in message.alert_ids[:50])
        email.set_content(message.text + "\n")
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                if s.starttls:
                    smtp.starttls()
                if s.username and s.password:
                    smtp.login(s.username, s.password)
                smtp.send_message(email)
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(f"SMTP answered {error.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("SMTP refused every recipient") from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP unreachable: {_reason(error)}") from None
