"""What leaves the database: messages built from an alert's rule, severity, message, company,
entity, counts and a whitelist of detail keys. Phone numbers are personal data: any string that
looks like one is masked as a last line of defence (`+49 30 1234567` -> `+49 30 ****567`)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Detail keys the detection rules and jobs write that carry no personal data. Anything else
# (a transcript, a caller's number, free text from the application) never leaves the database.
DETAIL_WHITELIST = frozenset(
    {
        "appointment_link_status",
        "appointment_made",
        "booking_failed",
        "booking_failure_reason",
        "call_company_id",
        "call_id",
        "claimed_seconds_ago",
        "direction",
        "factor",
        "failures",
        "idempotency_key",
        "interval_seconds",
        "job",
        "reason",
        "recent_calls",
        "recent_failures",
        "recent_rate",
        "requires_manual_processing",
        "service_id",
        "session_outcome",
        "sqlstate",
        "started_at",
        "usual_rate",
        "window_minutes",
    }
)
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 120
SUMMARY_MAX_IDS = 50

# A run of digits with the separators people write in phone numbers, at least 7 digits in all.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[\s./()\-]{0,2}\d){6,}(?!\w)")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_KEEP_LAST = 3
_KEEP_PREFIX = 4


def _mask_one(match: re.Match[str]) -> str:
    text = match.group(0)
    if _ISO_DATE.match(text):
        return text
    digits = sum(ch.isdigit() for ch in text)
    if digits < 7:
        return text
    keep_prefix = _KEEP_PREFIX if digits >= 10 else 0
    out: list[str] = []
    seen = 0
    for ch in text:
        if ch.isdigit():
            seen += 1
            hidden = keep_prefix < seen <= digits - _KEEP_LAST
            out.append("*" if hidden else ch)
        else:
            out.append(ch)
    return "".join(out)


def mask_phone_numbers(text: str) -> str:
    """Mask every digit of a phone-like number except a 4-digit prefix (10+ digits) and the
    last 3. ISO dates and short numbers (ids, counts) are left alone."""
    return _PHONE.sub(_mask_one, text)


def _clean_text(value: str, limit: int) -> str:
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return mask_phone_numbers(value)


class RenderError(Exception):
    """An alert that cannot be turned into a message: retrying cannot help, so its delivery is
    marked failed with this reason and the other alerts go on."""


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def safe_details(details: object) -> dict[str, Any]:
    """Whitelisted scalar detail values; strings masked and shortened. Details that are not a
    JSON object (only possible in rows written before the CHECK on guard.alerts) raise
    RenderError."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise RenderError(f"details are {_json_kind(details)}, not a JSON object")
    out: dict[str, Any] = {}
    for key, value in sorted(details.items()):
        if key not in DETAIL_WHITELIST:
            continue
        if isinstance(value, str):
            out[key] = _clean_text(value, MAX_DETAIL_CHARS)
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
    return out


@dataclass(frozen=True)
class AlertRow:
    """One claimed delivery: the alert as read from guard.alerts."""

    alert_id: int
    attempts: int
    rule_id: str | None
    company_id: int | None
    entity_type: str | None
    entity_id: int | None
    severity: str | None
    message: str | None
    details: object  # a JSON object, unless the row predates the CHECK on guard.alerts
    status: str | None
    occurrences: int | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True)
class Message:
    """One message to one channel, covering one alert or (throttled) a summary of several."""

    kind: str  # "alert" or "summary"
    alert_ids: tuple[int, ...]
    payload: dict[str, Any]
    subject: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def alert_message(row: AlertRow) -> Message:
    """The message for one alert. An alert deleted since (retention) still gets a message."""
    if row.rule_id is None:
        payload: dict[str, Any] = {"type": "alert", "alert_id": row.alert_id, "missing": True}
        text = f"alert #{row.alert_id} no longer exists (deleted by retention)"
        return Message("alert", (row.alert_id,), payload, text, text)
    severity = row.severity or "unknown"
    message = _clean_text(row.message or "", MAX_MESSAGE_CHARS)
    details = safe_details(row.details)
    payload = {
        "type": "alert",
        "alert_id": row.alert_id,
        "rule_id": row.rule_id,
        "severity": severity,
        "status": row.status,
        "company_id": row.company_id,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "occurrences": row.occurrences,
        "first_seen_at": _iso(row.first_seen_at),
        "last_seen_at": _iso(row.last_seen_at),
        "message": message,
        "details": details,
    }
    where = f"company {row.company_id}" if row.company_id is not None else "no company"
    entity = f"{row.entity_type} {row.entity_id}" if row.entity_id is not None else row.entity_type
    subject = f"[{severity.upper()}] {row.rule_id}: {entity} ({where})"
    lines = [
        f"[{severity.upper()}] {row.rule_id} - {message}",
        f"{where}, {entity}; {row.occurrences} occurrence(s); status {row.status};"
        f" first seen {_iso(row.first_seen_at)} (alert #{row.alert_id})",
    ]
    if details:
        lines.append("details: " + ", ".join(f"{k}={v}" for k, v in details.items()))
    return Message("alert", (row.alert_id,), payload, subject, "\n".join(lines))


def summary_message(rows: Sequence[AlertRow], channel: str) -> Message:
    """One message standing for many alerts when a channel is over its rate limit."""
    ids = tuple(row.alert_id for row in rows)
    by_rule = Counter(row.rule_id or "(deleted)" for row in rows)
    by_severity = Counter(row.severity or "unknown" for row in rows)
    payload: dict[str, Any] = {
        "type": "summary",
        "alerts": len(ids),
        "by_rule": dict(sorted(by_rule.items())),
        "by_severity": dict(sorted(by_severity.items())),
        "alert_ids": list(ids),
    }
    shown = ", ".join(f"#{i}" for i in ids[:SUMMARY_MAX_IDS])
    more = f" and {len(ids) - SUMMARY_MAX_IDS} more" if len(ids) > SUMMARY_MAX_IDS else ""
    subject = f"{len(ids)} Booking Guard alerts (summary, {channel} rate limit reached)"
    text = "\n".join(
        [
            subject,
            "by rule: " + ", ".join(f"{k} x{v}" for k, v in sorted(by_rule.items())),
            "by severity: " + ", ".join(f"{k} x{v}" for k, v in sorted(by_severity.items())),
            f"alerts {shown}{more} (guard.alerts has the rest)",
        ]
    )
    return Message("summary", ids, payload, subject, text)


@dataclass(frozen=True)
class Plan:
    """What to send to one channel for a batch of claimed alerts, and the alerts that could not
    be rendered (alert id -> reason)."""

    messages: list[Message]
    unrenderable: dict[int, str]


def render(row: AlertRow) -> Message:
    """alert_message, with any failure turned into a RenderError naming what went wrong."""
    try:
        return alert_message(row)
    except RenderError:
        raise
    except Exception as error:  # whatever breaks one alert must not stop the rest
        raise RenderError(f"{type(error).__name__}: {error}") from None


def plan_messages(rows: Sequence[AlertRow], capacity: int | None, channel: str) -> Plan:
    """One message per alert while the channel has room; beyond that, one summary for the rest
    (the summary itself takes the last free slot). An alert that cannot be rendered is set aside
    with its reason; it takes no slot."""
    if capacity is not None and capacity <= 0:
        return Plan([], {})
    # Alerts sent one by one; when the channel has no room for all, the rest share a summary.
    room = len(rows) if capacity is None or len(rows) <= capacity else capacity - 1
    unrenderable: dict[int, str] = {}
    single: list[Message] = []
    for row in rows[:room]:
        try:
            single.append(render(row))
        except RenderError as error:
            unrenderable[row.alert_id] = str(error)
    rest = rows[room:]
    if not rest:
        return Plan(single, unrenderable)
    return Plan([*single, summary_message(rest, channel)], unrenderable)
