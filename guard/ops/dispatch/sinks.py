"""Where messages go: stdout, a Slack-compatible webhook, SMTP, Alertmanager (docs/alerts.md,
"Endpoints that misbehave"). A DeliveryError (retried) never quotes a secret: URLs go through
guard.redact. One total deadline per send closes the connection, so a server trickling bytes
cannot outlive the claim; redirects are never followed."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import json
import logging
import os
import smtplib
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

from guard.errors import ConfigurationError
from guard.masking import mask_phone_numbers
from guard.ops.dispatch.message import Message, escape_controls, neutralise
from guard.redact import redact_text, redact_url, remember

log = logging.getLogger("guard.dispatch")

# The most of an answer's body read (and thrown away) after its status line.
_MAX_BODY = 64 * 1024
# Statuses whose Retry-After says when to come back (RFC 9110 10.2.3).
_RETRY_AFTER_STATUSES = (429, 503)
# The most of a refusal's reason (a 4xx answer's body) quoted in a log line and last_error.
MAX_REASON_CHARS = 300
# Answers whose body is quoted as the reason of a refusal: text, not a binary or unknown type.
_TEXT_TYPES = ("text/", "application/json", "application/problem+json")


class DeliveryError(Exception):
    """A send failed; the delivery is retried with backoff. `retry_after_s`: the receiver asked
    not to be called again before that many seconds (Retry-After), or None."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


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


# -- HTTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpTarget:
    """A checked http(s) URL: credentials out of it (its port named only when not the scheme's
    default), and the Authorization they make."""

    url: str
    authorization: str | None  # "Basic ..." from the URL's userinfo


def check_http_url(url: str, what: str, endpoint: str = "") -> HttpTarget:
    """Parse and check a sink URL at start (`endpoint`: a path to add to its own); a
    ConfigurationError (exit 2) naming `what` otherwise. The error shows the URL redacted, never
    its token or credentials."""
    remember(url)

    problem = _url_problem(url)
    if problem is not None:
        shown = f" ({redact_url(url)})" if url.startswith(("http://", "https://")) else ""
        raise ConfigurationError(f"{what}: {problem}{shown}")
    parts = urlsplit(url)
    assert parts.hostname is not None
    authorization = None
    if parts.username is not None or parts.password is not None:
        user = unquote(parts.username or "")
        password = unquote(parts.password or "")
        remember(password)  # the user name is no secret (and may be an ordinary word)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        authorization = f"Basic {token}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port not in (None, 443 if parts.scheme == "https" else 80):
        host += f":{parts.port}"
    path = parts.path.rstrip("/") + endpoint if endpoint else parts.path or "/"
    return HttpTarget(urlunsplit((parts.scheme, host, path, parts.query, "")), authorization)


def _url_problem(url: str) -> str | None:
    """What makes a sink URL unusable, or None."""
    if not url.startswith(("http://", "https://")):
        return "the URL must start with http:// or https://"
    if any(ch.isspace() for ch in url):
        return "the URL contains a space or line break (percent-encode it as %20)"
    if any(not ch.isprintable() for ch in url):
        return "the URL contains a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "the URL's port is not a number from 1 to 65535"
    host = parts.hostname or ""
    if not host or _host_problem(host):
        return f"the URL's host {_host_problem(host)}" if host else "the URL has no host"
    return "the URL has a #fragment, which is never sent" if parts.fragment else None


def _host_problem(host: str) -> str | None:
    """What makes a host name one no connection can resolve (an empty label, as in `a..b`, or
    one over 63 characters: the resolver's IDNA encoding refuses it), or None."""
    if ":" in host:
        return None  # an IPv6 address
    try:
        host.encode("idna")
    except UnicodeError:
        return "has an empty label (..) or one longer than 63 characters"
    return None


class _Deadline:
    """Shuts the watched socket down when the send's total time is up: a blocked connect, write
    or read then ends at once, whatever the server trickles."""

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket | None) -> None:
        self._sock = sock
        if self.expired.is_set():
            _shut_down(sock)

    def _expire(self) -> None:
        self.expired.set()
        _shut_down(self._sock)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shut_down(sock: socket.socket | None) -> None:
    """Through a duplicate of the descriptor: shuts the connection down for the thread blocked
    on it without touching the (TLS) socket object that thread is using."""
    if sock is None:
        return
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(sock.fileno())) as dup:
        dup.shutdown(socket.SHUT_RDWR)


class _Watched(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """http and https through connections the send's deadline watches once connected."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        deadline = self._deadline

        class Connection(http_class):  # type: ignore[misc]
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        return super().do_open(Connection, req, **kwargs)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:  # an answer of its own: never followed
        return None


def post_json(target: HttpTarget, payload: object, timeout_s: float, receiver: str) -> None:
    """POST payload as JSON within `timeout_s` in all (connect, send, answer), through
    HTTP(S)_PROXY unless NO_PROXY covers the host (urllib's rules). 2xx: done (a body still
    trickling in when the time is up does not undo it). Anything else is one DeliveryError
    naming the receiver, never the URL's secrets."""
    headers = {"Content-Type": "application/json", "User-Agent": "booking-guard"}
    if target.authorization:
        headers["Authorization"] = target.authorization
    body = json.dumps(payload).encode()
    request = urllib.request.Request(target.url, body, headers, method="POST")  # noqa: S310 - http(s)
    with _Deadline(timeout_s) as deadline:
        timed_out = DeliveryError(f"{receiver} timed out: no answer within {timeout_s:g} s")
        opener = urllib.request.build_opener(_Watched(deadline), _NoRedirect)
        try:
            response = opener.open(request, timeout=timeout_s)
        except urllib.error.HTTPError as answer:
            response = answer
        except (OSError, http.client.HTTPException) as error:
            if deadline.expired.is_set():
                raise timed_out from None
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            raise DeliveryError(f"{receiver} unreachable: {_reason(reason)}") from None
        with response:
            if deadline.expired.is_set():
                # http.client takes the end of the stream for the end of the headers: an answer
                # cut at the deadline may look complete. Not known to be accepted: retried.
                raise timed_out
            status = response.status
            if 200 <= status < 300:
                try:
                    response.read(_MAX_BODY)
                except (OSError, http.client.HTTPException):
                    # Accepted: what follows the status line does not change that.
                    log.debug("%s: answer body cut at the send deadline", receiver)
                return
            if 300 <= status < 400:
                location = response.headers.get("Location") or ""
                where = redact_url(location) if location else "no Location"
                raise DeliveryError(
                    f"{receiver} answered HTTP {status}, a redirect to {where}: not followed"
                    " (configure the URL it points to)"
                )
            retry_after = None
            if status in _RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            suffix = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
            if 400 <= status < 500:
                # A refusal of what was sent: retrying will not help until someone reads why.
                reason = refusal_reason(response)
                suffix += f": {reason}" if reason else ""
            raise DeliveryError(f"{receiver} answered HTTP {status}{suffix}", retry_after)


def refusal_reason(response: Any) -> str:
    """The reason a receiver gave with a 4xx answer, fit for a log line and last_error: the
    body when it is declared text or JSON (a JSON string as its text; an object's `message`,
    `error` or `detail`), read up to 64 kB, secrets and phone numbers blanked, on one line with
    control characters escaped, cut to MAX_REASON_CHARS. "" when there is none to quote."""
    kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not kind.startswith(_TEXT_TYPES):
        return ""
    try:
        raw = response.read(_MAX_BODY)
    except (OSError, http.client.HTTPException):  # cut at the send deadline, say
        return ""
    text = raw.decode("utf-8", "replace")
    if not kind.startswith("text/"):
        value = _json_or_text(text)
        if isinstance(value, dict):  # its message, error or detail; else the object as JSON
            keys = ("message", "error", "detail")
            value = next((value[k] for k in keys if isinstance(value.get(k), str)), value)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = escape_controls(" ".join(mask_phone_numbers(redact_text(text)).split()))
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _json_or_text(text: str) -> object:
    """The JSON value of a body, also of a JSON string cut short at the read limit; else the
    text as it is."""
    with contextlib.suppress(ValueError):
        return json.loads(text)
    if text.startswith('"'):
        for end in range(len(text), max(0, len(text) - 8), -1):  # a cut \uXXXX escape
            try:
                return json.loads(text[:end] + '"')
            except ValueError:
                continue
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delay-seconds (`120`) or an HTTP-date
    (`Wed, 21 Oct 2026 07:28:00 GMT`); None when absent or unreadable. A date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WebhookSink:
    """POST `{"text": ...}` as JSON: what Slack (and Mattermost, Rocket.Chat, Teams workflows)
    accept on an incoming webhook. Any non-2xx answer or network error is retried."""

    name, receiver, setting = "webhook", "webhook", "GUARD_SLACK_WEBHOOK_URL"
    endpoint = ""  # added to the path of the URL given

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self._target = check_http_url(url, self.setting, self.endpoint)
        self._timeout_s = timeout_s

    def __repr__(self) -> str:  # never show the URL: it is the secret, or carries credentials
        return f"{type(self).__name__}(url=***)"

    def body(self, message: Message) -> object:
        return {"text": message.text}

    def send(self, message: Message) -> None:
        post_json(self._target, self.body(message), self._timeout_s, self.receiver)


class AlertmanagerSink(WebhookSink):
    """POST each alert to Alertmanager's API v2 (`/api/v2/alerts`), where on-call's silences,
    inhibition and routing apply (docs/alerts.md, "Alertmanager"). Labels identify the alert, so
    a re-send after a crash merges. Sent once, not every evaluation, an alert is held active for
    `hold` (its `endsAt`), counted from the latest of this process's clock and the alert's own
    (database) times, and never ends before it starts: Alertmanager refuses that (400)."""

    name, receiver, setting = "alertmanager", "Alertmanager", "GUARD_ALERTMANAGER_URL"
    endpoint = "/api/v2/alerts"

    def __init__(
        self,
        url: str,
        timeout_s: float = 10.0,
        hold: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(url, timeout_s)
        self._hold = hold
        self._clock = clock or (lambda: datetime.now(UTC))

    def _alert(
        self,
        message: Message,
        labels: dict[str, str],
        starts: datetime,
        ends: datetime | None = None,
        seen: Sequence[datetime | None] = (),
    ) -> dict[str, Any]:
        """One API v2 alert from `starts`; held from the latest of now, `starts` and `seen`
        unless `ends` is given; never ending before it starts."""
        if ends is None:
            ends = max([self._clock(), starts, *(t for t in seen if t is not None)]) + self._hold
        return {
            "labels": labels,
            "annotations": {"summary": message.subject, "description": message.text},
            "startsAt": starts.isoformat(),
            "endsAt": max(ends, starts).isoformat(),
        }

    def body(self, message: Message) -> list[dict[str, Any]]:
        """The API v2 body for one message."""
        now = self._clock()
        p = message.payload
        if message.kind == "review" and not p.get("missing"):
            # One Alertmanager alert per review item, so routing and silences can tell reasons
            # and priorities apart; it stays active for the hold (a person closes the item in
            # the queue, not here).
            labels = _labels(
                alertname="booking_guard_review_item",
                severity="critical" if p.get("priority") == 0 else "warning",
                source="booking-guard",
                reason=p["reason"],
                priority=p["priority"],
                guard_review_item_id=p["review_item_id"],
                company_id=p.get("company_id"),
            )
            return [self._alert(message, labels, _time(p.get("created_at")) or now)]
        if message.kind == "test":
            # resolved at once: a test shows in Alertmanager's history, pages nobody for long
            labels = {"alertname": "booking_guard_test", "severity": "none"}
            return [self._alert(message, labels, now, now + _TEST_ALERT_HOLD)]
        if p.get("type") not in ("alert", "resolved") or p.get("missing"):
            kind = "alert_missing" if p.get("missing") else "summary"
            labels = {"alertname": f"booking_guard_{kind}", "severity": "warning"}
            return [self._alert(message, labels, now)]
        labels = _labels(
            alertname=p["check_id"],
            severity=p["severity"],
            source="booking-guard",
            guard_alert_id=p["alert_id"],
            rule=p.get("rule_id"),  # None: the alert's check was removed since
            company_id=p.get("company_id"),
            entity_type=p.get("entity_type") or None,
            entity_id=p.get("entity_id"),
        )
        starts = _time(p.get("first_seen_at")) or now
        if message.kind == "resolved" or p.get("status") not in (None, "open"):
            return [self._alert(message, labels, starts, _time(p.get("resolved_at")) or now)]
        return [self._alert(message, labels, starts, seen=[_time(p.get("last_seen_at"))])]


def _labels(**labels: object) -> dict[str, str]:
    """An alert's labels, those that are None left out. Labels are data too (a check id, an
    entity type): neutralised as texts are."""
    return {key: neutralise(str(value)) for key, value in labels.items() if value is not None}


# How long `guard alerts test`'s alert stays active in Alertmanager: long enough to be routed.
_TEST_ALERT_HOLD = timedelta(minutes=5)


def _time(value: object) -> datetime | None:
    """A time of the payload (ISO 8601, from the database), or None."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _reason(reason: object) -> str:
    if isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(reason, OSError):
        return reason.strerror or type(reason).__name__
    # anything else by its type: an HTTPException's text may quote the request line
    return type(reason).__name__ if not isinstance(reason, str) else redact_text(reason)


# -- SMTP -------------------------------------------------------------------------------------


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

    def check(self) -> None:
        """At start: a ConfigurationError (exit 2) for settings no send could work with."""
        remember(self.password)
        host = self.host or ""
        if not host or any(ch.isspace() or not ch.isprintable() for ch in host) or "/" in host:
            raise ConfigurationError(
                "SMTP host: empty, or it contains a space, / or a control character"
            )
        if problem := _host_problem(host):
            raise ConfigurationError(f"SMTP host {host[:80]!r} {problem}")
        if not 1 <= self.port <= 65535:
            raise ConfigurationError(f"SMTP port {self.port} is not from 1 to 65535")
        if not self.recipients:
            raise ConfigurationError("email needs at least one recipient (--smtp-to)")
        for role, address in [("--smtp-from", self.sender)] + [
            ("--smtp-to", r) for r in self.recipients
        ]:
            _, parsed = email.utils.parseaddr(address)
            if (
                "@" not in parsed
                or any(ch.isspace() or not ch.isprintable() for ch in parsed)
                or any(ch in address for ch in "\r\n")
            ):
                raise ConfigurationError(f"{role}: not an e-mail address: {address[:80]!r}")
        if bool(self.username) != bool(self.password):
            raise ConfigurationError(
                "GUARD_SMTP_USER and GUARD_SMTP_PASSWORD go together: set both"
            )


class EmailSink:
    """One email per message over SMTP (a fresh connection per send: alerts are rare and a
    long-lived SMTP session times out). A 4xx/5xx answer up to the end of DATA, or a network
    error before it, is retried. Once the server accepted the data (250) the mail is delivered:
    what happens at QUIT is logged, not retried (a retry would send it again)."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        settings.check()
        self._settings = settings

    def __repr__(self) -> str:
        return f"EmailSink(host={self._settings.host!r}, port={self._settings.port})"

    def send(self, message: Message) -> None:
        s = self._settings
        email_message = EmailMessage()
        email_message["From"] = s.sender
        email_message["To"] = ", ".join(s.recipients)
        email_message["Subject"] = message.subject
        # RFC 5322 requires Date:; Message-ID: lets mail clients thread, deduplicate and
        # reference an alert. smtplib adds neither. The domain is the sender's, so ids are
        # unique per sending site; a retry gets a new id (it is a new message). The domain of
        # `guard@example.org` or `Booking Guard <guard@example.org>`:
        domain = s.sender.rpartition("@")[2].strip().rstrip(">").strip() or None
        email_message["Date"] = formatdate(usegmt=True)
        email_message["Message-ID"] = make_msgid("booking-guard", domain=domain)
        if message.kind == "report":
            email_message["X-Booking-Guard-Report"] = str(message.payload["report_date"])
        else:
            review = message.kind == "review"
            header = "X-Booking-Guard-Review-Items" if review else "X-Booking-Guard-Alerts"
            email_message[header] = ",".join(str(i) for i in message.alert_ids[:50])
        email_message.set_content(message.text + "\n")
        with _Deadline(s.timeout_s) as deadline:
            smtp = smtplib.SMTP(timeout=s.timeout_s)
            try:
                try:
                    smtp.connect(s.host, s.port)
                    deadline.watch(smtp.sock)
                    if s.starttls:
                        smtp.starttls()
                        deadline.watch(smtp.sock)
                    if s.username and s.password:
                        smtp.login(s.username, s.password)
                    refused = smtp.send_message(email_message)
                except smtplib.SMTPResponseException as error:
                    raise DeliveryError(f"SMTP answered {error.smtp_code}") from None
                except smtplib.SMTPRecipientsRefused:
                    raise DeliveryError("SMTP refused every recipient") from None
                except (smtplib.SMTPException, OSError) as error:
                    if deadline.expired.is_set():
                        raise DeliveryError(
                            f"SMTP timed out: not done within {s.timeout_s:g} s"
                        ) from None
                    raise DeliveryError(f"SMTP unreachable: {_reason(error)}") from None
                if refused:
                    log.warning(
                        "email: %d of %d recipient(s) refused; delivered to the others",
                        len(refused),
                        len(s.recipients),
                    )
                # Delivered: the server took the data. QUIT is a courtesy.
                try:
                    code, _ = smtp.docmd("QUIT")
                    if code != 221:
                        log.debug("email: QUIT answered %d after a delivered mail; ignored", code)
                except (smtplib.SMTPException, OSError) as error:
                    reason = _reason(error)
                    log.debug("email: QUIT failed after a delivered mail (%s); ignored", reason)
            finally:
                smtp.close()
