"""What leaves the database (docs/alerts.md, "What leaves the database"): messages built from
an alert's identifiers, counts and a whitelist of detail keys, every string and number masked by
Booking Guard's one phone-number rule (guard/masking.py) as a last line of defence."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from guard import masking, queries
from guard.masking import mask_phone_numbers

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
# A review item's details (written by the booking path, reconcile and the calendar's
# reconciliation) may also carry these; the rest (an error text, a rollback context, a
# transcript) stays in the database.
REVIEW_DETAIL_WHITELIST = DETAIL_WHITELIST | {"attempt_id", "booking_uid"}
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 120
SUMMARY_MAX_IDS = 50


# Slack (`<!channel>`, `<@U123>`, `<https://x|text>`), HTML and e-mail clients act on angle
# brackets: data gets the single angle quotation marks instead.
_ANGLES = str.maketrans({"<": "\u2039", ">": "\u203a"})
# A mention at the start of a word (`@here`, `@channel`, `@everyone`, `@someone`); e-mail
# addresses (`ops@example.org`) are not mentions and keep their `@`.
_MENTION = re.compile(r"(?<![\w.+-])@(?=[\w!])")
# A markdown link `[text](target)`: broken between its two halves.
_MARKDOWN_LINK = re.compile(r"\]\s*\(")


def escape_controls(value: str) -> str:
    """Control, format, private-use and surrogate characters as visible escapes (`\\x1b`)."""
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")
        else ch
        for ch in value
    )


def neutralise(value: str) -> str:
    """Data made inert for every channel: one line (whitespace runs, newlines included, become
    one space); control and format characters (ESC sequences, bidi overrides, zero-width
    characters) shown as visible escapes (`\\x1b`, `\\u202e`); angle brackets as single angle
    quotation marks (U+2039, U+203A), so no Slack mention, link or HTML tag can form; a mention
    `@here` with a fullwidth at sign (U+FF20); a link target
    `https://evil` as `https[:]//evil`, and a markdown link `[text](url)` split as `[text] (url)`.
    Readable for a person, active in no chat tool, mail client or terminal."""
    value = " ".join(value.split())
    if not value.isascii() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        value = escape_controls(value)
    value = value.translate(_ANGLES)
    value = _MENTION.sub("\uff20", value)
    # A link target (`https://`, autolinked by chat tools, the target of a markdown link).
    value = value.replace("://", "[:]//")
    return _MARKDOWN_LINK.sub("] (", value)


def _clean_text(value: str, limit: int) -> str:
    """Phone numbers masked, then one line, shortened: a value of the JSON payload (the stdout
    channel's JSON keeps it otherwise exact; JSON escapes its control characters). Masked
    first, so that shortening can never cut a number down to digits the rule lets through."""
    value = " ".join(mask_phone_numbers(value).split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def _label(value: str | None) -> str | None:
    """A short identifier (check, rule, severity, status, entity type) for a text: neutralised."""
    return None if value is None else neutralise(_clean_text(value, MAX_DETAIL_CHARS))


class RenderError(Exception):
    """An alert that cannot be turned into a message: retrying cannot help, so its delivery is
    marked failed with this reason and the other alerts go on."""


def _json_kind(value: object) -> str:
    kinds = ((type(None), "null"), (bool, "a boolean"), (int | float, "a number"))
    for of, kind in (*kinds, (str, "a string"), (list, "an array")):
        if isinstance(value, of):
            return kind
    return type(value).__name__


# The key guard.json_excerpt adds when details were too large to leave the database whole.
TRUNCATED_KEY = "details_truncated"


def truncated_bytes(details: object) -> int | None:
    """The full size of details the claim cut to an excerpt, or None when they came whole."""
    if not isinstance(details, Mapping):
        return None
    marker = details.get(TRUNCATED_KEY)
    if not isinstance(marker, Mapping):
        return None
    size = marker.get("bytes")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def safe_details(details: object, whitelist: frozenset[str] = DETAIL_WHITELIST) -> dict[str, Any]:
    """Whitelisted scalar detail values; strings masked and shortened. Details that are not a
    JSON object (only possible in rows written before the CHECK on guard.alerts) raise
    RenderError."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise RenderError(f"details are {_json_kind(details)}, not a JSON object")
    out: dict[str, Any] = {}
    for key, value in sorted(details.items()):
        if key not in whitelist:
            continue
        if isinstance(value, str):
            out[key] = _clean_text(value, MAX_DETAIL_CHARS)
        elif value is None or isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int | float):
            # a number that holds a phone number becomes the masked string, as in the views
            out[key] = masking.mask_json(value)
    return out


@dataclass(frozen=True)
class AlertRow:
    """One claimed delivery: the alert as read from guard.alerts."""

    alert_id: int
    check_id: str | None  # the check that raised it (the Alertmanager alertname)
    rule_id: str | None  # its rule: one id per invariant (None: the check was removed since)
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
    resolved_at: datetime | None = None  # None: open (or deleted)


@dataclass(frozen=True)
class ReviewRow:
    """One claimed review notice: the review item as read from guard.review_items (reason and
    the rest None when the item no longer exists)."""

    review_item_id: int
    reason: str | None
    priority: int | None
    status: str | None
    company_id: int | None
    call_id: int | None
    appointment_id: int | None
    created_at: datetime | None
    details: object


@dataclass(frozen=True)
class Message:
    """One message to one channel, covering one alert or (throttled) a summary of several."""

    kind: str  # "alert", "summary", "resolved", "review", "digest" or "report"
    alert_ids: tuple[int, ...]  # for "review": the review item's id
    payload: dict[str, Any]
    subject: str
    text: str


def _inert(row: AlertRow) -> AlertRow:
    """The row with its identifiers neutralised as data (they come from tables too)."""
    return replace(
        row,
        check_id=_label(row.check_id),
        rule_id=_label(row.rule_id),
        severity=_label(row.severity),
        status=_label(row.status),
        entity_type=_label(row.entity_type),
    )


def _iso(value: Any) -> Any:
    """A time as ISO 8601; any other value as it is."""
    return value.isoformat() if isinstance(value, datetime) else value


# What a summary or a digest counts its alerts by: the row's field, and the word for none.
_TALLIED = {
    "rule": ("rule_id", "(unknown)"),
    "check": ("check_id", "(deleted)"),
    "severity": ("severity", "unknown"),
}


def _tallies(rows: Sequence[AlertRow], labels: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The alerts counted by each of `labels`: for the payload (`by_<label>`), and as the lines
    of a text (identifiers neutralised)."""

    def count(of: Sequence[AlertRow], label: str) -> list[tuple[str, int]]:
        field_name, none = _TALLIED[label]
        return sorted(Counter(getattr(r, field_name) or none for r in of).items())

    shown = [_inert(row) for row in rows]
    payload = {f"by_{label}": dict(count(rows, label)) for label in labels}
    return payload, [
        f"by {label}: " + ", ".join(f"{k} x{v}" for k, v in count(shown, label)) for label in labels
    ]


def test_message(channel: str, sent_by: str, sent_at: datetime) -> Message:
    """`guard alerts test`: one message through one channel, saying it is a test and who sent
    it, so that a person watching the channel knows nothing is wrong."""
    text = (
        f"Booking Guard test message for channel {channel}, sent by {neutralise(sent_by)} at"
        f" {_iso(sent_at)}: if you read this, alerts reach you here. Nothing needs doing."
    )
    payload = {"type": "test", "channel": channel, "sent_by": sent_by, "sent_at": _iso(sent_at)}
    return Message("test", (), payload, "Booking Guard test message", text)


def _payload(kind: str, row: AlertRow | ReviewRow, **values: Any) -> dict[str, Any]:
    """A row's fields as a payload (times in ISO 8601), then `values` over them."""
    return {"type": kind, **{f.name: _iso(getattr(row, f.name)) for f in fields(row)}, **values}


def _details_line(details: Mapping[str, Any]) -> list[str]:
    """The line showing whitelisted details (none when there are none), values neutralised."""
    if not details:
        return []
    shown = (f"{k}={neutralise(v) if isinstance(v, str) else v}" for k, v in details.items())
    return ["details: " + ", ".join(shown)]


def _headline(row: AlertRow, tag: str) -> tuple[str, str]:
    """An inert alert's subject (`[TAG] check: entity (company)`) and where it is."""
    where = f"company {row.company_id}" if row.company_id is not None else "no company"
    entity = f"{row.entity_type} {row.entity_id}" if row.entity_id is not None else row.entity_type
    return f"[{tag}] {row.check_id}: {entity} ({where})", f"{where}, {entity}"


def alert_message(row: AlertRow) -> Message:
    """The message for one alert. An alert deleted since (retention) still gets a message."""
    if row.check_id is None:
        payload: dict[str, Any] = {"type": "alert", "alert_id": row.alert_id, "missing": True}
        text = f"alert #{row.alert_id} no longer exists (deleted by retention)"
        return Message("alert", (row.alert_id,), payload, text, text)
    message = _clean_text(row.message or "", MAX_MESSAGE_CHARS)
    details = safe_details(row.details)
    payload = _payload(
        "alert", row, severity=row.severity or "unknown", message=message, details=details
    )
    del payload["resolved_at"]
    cut = truncated_bytes(row.details)
    # Built from the id, not taken from the row's marker: a detail key an application wrote must
    # not put its own text into the message.
    read_more = queries.read_alert_details(row.alert_id)
    if cut is not None:
        payload[TRUNCATED_KEY] = {"bytes": cut, "read_more": read_more}
    # The texts (webhook, e-mail, Alertmanager annotations) show data neutralised.
    row = _inert(row)
    severity = (row.severity or "unknown").upper()
    subject, place = _headline(row, severity)
    lines = [
        f"[{severity}] {row.check_id} (rule {row.rule_id or '(unknown)'}) - {neutralise(message)}",
        f"{place}; {row.occurrences} occurrence(s); status {row.status};"
        f" first seen {_iso(row.first_seen_at)} (alert #{row.alert_id})",
        *_details_line(details),
    ]
    if cut is not None:
        size = f"{cut / 1_048_576:.1f} MB" if cut >= 1_048_576 else f"{cut / 1024:.0f} kB"
        lines.append(f"details truncated ({size}); the rest: {read_more}")
    return Message("alert", (row.alert_id,), payload, subject, "\n".join(lines))


def resolved_message(row: AlertRow) -> Message:
    """The one-time notice that an alert a channel was sent has resolved."""
    if row.resolved_at is None:
        raise ValueError(f"alert #{row.alert_id} no longer exists")
    fired = alert_message(row)
    row = _inert(row)
    payload = {**fired.payload, "type": "resolved", "resolved_at": _iso(row.resolved_at)}
    subject, place = _headline(row, "RESOLVED")
    text = (
        f"[RESOLVED] {row.check_id} (rule {row.rule_id or '(unknown)'})"
        f" - {neutralise(str(payload['message']))}\n"
        f"{place}; resolved {_iso(row.resolved_at)} after {row.occurrences}"
        f" occurrence(s), first seen {_iso(row.first_seen_at)} (alert #{row.alert_id})"
    )
    return Message("resolved", (row.alert_id,), payload, subject, text)


def review_message(row: ReviewRow) -> Message:
    """The one-time notice that a review item was opened: its reason, priority, company, call
    and appointment ids and whitelisted details, phone numbers masked; in the texts every value
    is neutralised. Never the item's free text (note, an error text, a transcript)."""
    details = safe_details(row.details, REVIEW_DETAIL_WHITELIST)
    payload = _payload("review_item", row, details=details)
    if row.reason is None:
        payload["missing"] = True
        text = f"review item #{row.review_item_id} no longer exists"
        return Message("review", (row.review_item_id,), payload, text, text)
    reason = _label(row.reason)
    where = f"company {row.company_id}" if row.company_id is not None else "no company"
    entity = (
        f"call {row.call_id}"
        if row.call_id is not None
        else f"appointment {row.appointment_id}"
        if row.appointment_id is not None
        else "no call"
    )
    subject = f"[REVIEW P{row.priority}] {reason}: {entity} ({where})"
    lines = [
        f"[REVIEW P{row.priority}] {reason} - a review item was opened for a person",
        f"{where}, {entity}; status {_label(row.status)}; opened {_iso(row.created_at)}"
        f" (review item #{row.review_item_id}; guard review list)",
        *_details_line(details),
    ]
    return Message("review", (row.review_item_id,), payload, subject, "\n".join(lines))


def summary_message(rows: Sequence[AlertRow], channel: str) -> Message:
    """One message standing for many alerts when a channel is over its rate limit."""
    ids = tuple(row.alert_id for row in rows)
    counts, lines = _tallies(rows, ("rule", "check", "severity"))
    payload: dict[str, Any] = {
        "type": "summary",
        "alerts": len(ids),
        **counts,
        "alert_ids": list(ids),
    }
    shown = ", ".join(f"#{i}" for i in ids[:SUMMARY_MAX_IDS])
    more = f" and {len(ids) - SUMMARY_MAX_IDS} more" if len(ids) > SUMMARY_MAX_IDS else ""
    subject = f"{len(ids)} Booking Guard alerts (summary, {channel} rate limit reached)"
    text = "\n".join([subject, *lines, f"alerts {shown}{more} (guard.alerts has the rest)"])
    return Message("summary", ids, payload, subject, text)


DIGEST_MAX_LINES = 50


def digest_message(
    rows: Sequence[AlertRow], period_end: datetime, period_hours: int, channel: str
) -> Message:
    """One message for the alerts opened in a digest period on a `--digest` channel: counts by
    severity and check, then a line per alert (the first DIGEST_MAX_LINES), each the subject its
    own message would have had. Alerts held back since earlier periods (the channel was down,
    the digest was just switched on) are in it too, and the range it names starts at the first
    of them. Times in UTC whatever the session's TimeZone gave ``period_end`` and the rows."""
    ids = tuple(row.alert_id for row in rows)
    period_end = period_end.astimezone(UTC)
    period_start = period_end - timedelta(hours=period_hours)
    start = min([period_start, *(r.first_seen_at.astimezone(UTC) for r in rows if r.first_seen_at)])
    counts, tallied = _tallies(rows, ("severity", "check"))
    payload: dict[str, Any] = {
        "type": "digest",
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        "opened_from": start.isoformat(),
        "alerts": len(ids),
        **counts,
        "alert_ids": list(ids),
    }
    subject = (
        f"Booking Guard digest: {len(ids)} alert(s) opened {start:%Y-%m-%d %H:%M}"
        f" to {period_end:%Y-%m-%d %H:%M} UTC"
    )
    lines = [subject, *tallied, ""]
    for row in rows[:DIGEST_MAX_LINES]:
        try:
            lines.append(f"#{row.alert_id} {alert_message(row).subject}")
        except Exception:  # one alert that cannot be rendered must not hold the digest back
            lines.append(f"#{row.alert_id} (cannot be rendered; guard.alerts has it)")
    if len(rows) > DIGEST_MAX_LINES:
        lines.append(
            f"and {len(rows) - DIGEST_MAX_LINES} more alert(s) (guard.alerts has the rest;"
            f" {channel} digest)"
        )
    return Message("digest", ids, payload, subject, "\n".join(lines))


@dataclass(frozen=True)
class Plan:
    """What to send to one channel for a batch of claimed alerts, and the alerts that could not
    be rendered (alert id -> reason)."""

    messages: list[Message]
    unrenderable: dict[int, str]


def plan_messages(
    rows: Sequence[Any],
    capacity: int | None,
    channel: str,
    render: Callable[[Any], Message] = alert_message,
    subjects: Sequence[int] | None = None,
) -> Plan:
    """The messages for a batch of claimed rows (alerts by default) on `channel`: one per row
    while the channel has room; beyond that, one summary for the rest of the alerts (it takes
    the last free slot; a notice is never claimed past the room). A row that cannot be rendered
    is set aside with its reason (a RenderError's text, else the error's type and text); it
    takes no slot and the others go on."""
    if capacity is not None and capacity <= 0:
        return Plan([], {})
    subjects = subjects if subjects is not None else [row.alert_id for row in rows]
    room = len(rows) if capacity is None or len(rows) <= capacity else capacity - 1
    plan = Plan([], {})
    for subject, row in zip(subjects[:room], rows[:room], strict=True):
        try:
            message = render(row)
        except Exception as error:  # whatever breaks one row must not stop the rest
            reason = f"{type(error).__name__}: {error}"
            plan.unrenderable[subject] = str(error) if isinstance(error, RenderError) else reason
            continue
        plan.messages.append(replace(message, alert_ids=(subject,)))
    if rows[room:]:
        plan.messages.append(summary_message(rows[room:], channel))
    return plan
