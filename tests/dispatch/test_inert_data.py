"""Data never acts in a channel. Free text the application writes (every text column of
public.calls it may write, booking_failure_reason first) and every whitelisted detail key and the
message of an alert are filled with generated markup: Slack mentions and links, `@here`,
markdown links, HTML, terminal escape codes, control characters, `|`, newlines, bidi overrides.
Detection copies what it copies; the dispatcher delivers to every channel (a webhook, a real SMTP
server, an Alertmanager-compatible receiver, and stdout); then every text each receiver got is
searched for anything still active. Markers prove the data did arrive. The stdout channel is JSON
for scripts: it keeps values exact, with JSON's escapes for every control character."""

from __future__ import annotations

import email
import email.policy
import io
import random
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import errors, sql

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import DETAIL_WHITELIST, neutralise
from guard.ops.dispatch.sinks import (
    AlertmanagerSink,
    EmailSink,
    Sink,
    SmtpSettings,
    StdoutSink,
    WebhookSink,
)
from tests.dispatch.conftest import Mailbox, Webhook, insert_alerts
from tests.dispatch.endpoints import Reply, endpoint

FRAGMENTS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U024BE7LH>",
    "<#C024BE7LR|general>",
    "<!subteam^S0123>",
    "@here",
    "@channel",
    "@everyone",
    " @here",
    "<https://evil.example/a|click here>",
    "<mailto:x@evil.example|mail us>",
    "[click](https://evil.example/b)",
    "[x] (javascript:alert(1))",
    "https://evil.example/c",
    "<b>bold</b><script>alert(1)</script>",
    "\x1b[31mRED\x1b[0m",
    "\x1b]8;;https://evil.example/d\x07link\x1b]8;;\x07",
    "\x1b]0;title\x07",
    "\x07\x08\x7f\x9b",
    "\u202eevil\u202c",
    "\u2066isolate\u2069\u200f",
    "zero\u200bwidth\ufeff",
    "a|b|c",
    "\nFAKE-LINE [CRITICAL] forged alert",
    "\r\nBcc: victim@evil.example",
    "\u2028FAKE-LINE separator",
]
ACTIVE_MENTION = re.compile(r"(?<![\w.+-])@(?:here|channel|everyone|\w)")
FORGED_LINE = re.compile(r"^\s*(FAKE-LINE|Bcc:)", re.MULTILINE)


def hostile(rng: random.Random, marker: str) -> str:
    picked = rng.sample(FRAGMENTS, 6)
    return f"{marker} " + " ".join(picked)


def still_active(text: str) -> list[str]:
    """What in `text` a chat tool, mail client, browser or terminal would act on."""
    found = []
    for ch in set(text):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch != "\n") or category in ("Cf", "Zl", "Zp"):
            found.append(f"character U+{ord(ch):04X}")
    if "<" in text or ">" in text:
        found.append("angle bracket (mention, link or tag)")
    if ACTIVE_MENTION.search(text):
        found.append(f"mention {ACTIVE_MENTION.search(text).group()!r}")  # type: ignore[union-attr]
    if re.search(r"\]\(", text):
        found.append("markdown link")
    if "://" in text:
        found.append("link target")
    if FORGED_LINE.search(text):
        found.append("a line forged by a newline in data")
    return found


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def _write_calls(url: str, rng: random.Random) -> dict[str, str]:
    """A failed booking whose every writable text column holds hostile text (a column whose
    constraint refuses it keeps its value)."""
    written: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (7, 'Acme')")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome,"
            " booking_failed, booking_failure_reason) VALUES"
            " (1, 7, 'c1', 'inbound', 'creation_failed', true, 'x')"
        )
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = 'calls' AND data_type IN ('text', 'character varying')"
            " ORDER BY column_name"
        ).fetchall()
        for (column,) in columns:
            value = hostile(rng, f"MARK-{column}")
            try:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("UPDATE calls SET {} = %s WHERE id = 1").format(
                            sql.Identifier(column)
                        ),
                        (value,),
                    )
                written[column] = value
            except (errors.CheckViolation, errors.UniqueViolation, errors.DataException):
                pass
        conn.execute("SELECT * FROM guard.run_detection(now() - interval '1 hour', NULL)")
    return written


def test_no_markup_mention_link_or_control_character_from_data_acts_in_any_channel(
    db_url: str, webhook: Webhook, smtp_server: Mailbox
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    written = _write_calls(db_url, rng)
    assert "booking_failure_reason" in written, "the application's failure reason was written"
    details: dict[str, Any] = {key: hostile(rng, f"MARK-{key}") for key in DETAIL_WHITELIST}
    insert_alerts(db_url, 1, details=details, message=hostile(rng, "MARK-message"))
    with psycopg.connect(db_url) as conn:
        detected = conn.execute(
            "SELECT details->>'booking_failure_reason' FROM guard.alerts"
            " WHERE check_id = 'recent_booking_failure'"
        ).fetchone()
    assert detected and "MARK-booking_failure_reason" in str(detected[0]), "detection copied it"

    out = io.StringIO()
    with endpoint(lambda _request: Reply(200)) as am:
        sinks: list[tuple[Sink, int]] = [
            (StdoutSink(out), 0),
            (WebhookSink(webhook.url, 2.0), 0),
            (AlertmanagerSink(am.url("/"), 2.0), 0),
            (
                EmailSink(
                    SmtpSettings(
                        "127.0.0.1", smtp_server.port, "guard@example.org", ["ops@example.org"]
                    )
                ),
                0,
            ),
        ]
        settings_ = DispatchSettings(lease_s=10.0, send_timeout_s=2.0, worker_id="inert")
        stats = Dispatcher(db_url, sinks, settings_).run_once()
        am_bodies = [p.json() for p in am.posts()]
    alerts = stats.alerts_delivered // 4
    assert alerts >= 2 and stats.failed_sends == 0 and stats.unrenderable == 0, stats

    # stdout is JSON for scripts: values exact, every control and non-ASCII character escaped
    # by JSON, so nothing reaches a terminal raw.
    lines = out.getvalue().splitlines()
    assert lines and all(line.isascii() and line.isprintable() for line in lines)
    assert "MARK-booking_failure_reason" in out.getvalue() and "MARK-message" in out.getvalue()
    received: dict[str, list[str]] = {
        "webhook": [b["text"] for b in webhook.bodies],
        "alertmanager": [s for body in am_bodies for s in strings(body)],
        "email": [],
    }
    for raw in smtp_server.messages:
        # CRLF is how SMTP carries lines, not data.
        mail = email.message_from_string(raw.replace("\r\n", "\n"), policy=email.policy.default)
        received["email"] += [str(mail["Subject"]), mail.get_content()]
        assert "\x1b" not in raw and "\u202e" not in raw
    assert {k: len(v) > 0 for k, v in received.items()} == dict.fromkeys(received, True)
    problems = {
        f"{channel}: {text[:80]!r}": found
        for channel, texts in received.items()
        for text in texts
        if (found := still_active(text))
    }
    assert problems == {}, f"seed {seed}"
    for channel, texts in received.items():
        joined = "\n".join(texts)
        assert "MARK-booking_failure_reason" in joined, channel
        assert "MARK-message" in joined, channel
        assert "MARK-session_outcome" in joined or "session_outcome" not in written, channel


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=12))
def test_neutralise_leaves_nothing_active(parts: list[str]) -> None:
    text = neutralise("".join(parts))
    assert still_active(f"[HIGH] check - {text}") == [], text
    assert "\n" not in text
