"""Delivery to stdout, a webhook and SMTP: retries with backoff against failing servers,
throttling into summaries, masking of phone numbers, the NOTIFY wake-up."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
import io
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.masking import mask_phone_numbers
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import Message
from guard.ops.dispatch.sinks import (
    AlertmanagerSink,
    EmailSink,
    Sink,
    SmtpSettings,
    StdoutSink,
    WebhookSink,
)
from tests.dispatch.conftest import (
    Mailbox,
    Webhook,
    delivery_rows,
    ids_in,
    insert_alerts,
    wait_for,
)
from tests.support.queries import fetch_one

FAST = DispatchSettings(
    poll_interval_s=30.0,
    batch_size=50,
    lease_s=5.0,
    send_timeout_s=1.0,
    max_attempts=5,
    backoff_base_s=0.2,
    backoff_max_s=2.0,
    worker_id="test",
)


def test_mask_phone_numbers() -> None:
    assert mask_phone_numbers("+49 30 1234567") == "+49 30 ****567"
    assert mask_phone_numbers("call +4915112345678 now") == "call +4915******678 now"
    assert mask_phone_numbers("(030) 123-4567") == "(030) ***-*567"
    assert mask_phone_numbers("0049 30 1234567") == "0049 ** ****567"
    # dates, times, ids and counts are not phone numbers
    for text in ("2026-11-21", "alert #123456", "rate 0.25 of 12 calls", "at 20:15:12"):
        assert mask_phone_numbers(text) == text


def test_an_alert_of_a_removed_check_goes_out_without_a_rule(db_url: str) -> None:
    """guard.checks may lose a row (a DBA's own check retired) while its alerts remain."""
    insert_alerts(db_url, 1, check="retired_check")
    args = ["--database-url", db_url, "watch", "--once", "--channel", "stdout"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert (line["check_id"], line["rule_id"]) == ("retired_check", None)
    message = Message("alert", (1,), line, "s", "t")
    labels = AlertmanagerSink("http://am.invalid").body(message)[0]["labels"]
    assert labels["alertname"] == "retired_check" and "rule" not in labels


def test_stdout_once_delivers_everything_then_nothing(db_url: str) -> None:
    ids = insert_alerts(db_url, 3)
    runner = CliRunner()
    args = ["--database-url", db_url, "watch", "--once", "--channel", "stdout"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["alert_id"] for line in lines] == ids
    assert {line["check_id"] for line in lines} == {"booked_without_appointment"}
    assert {line["rule_id"] for line in lines} == {"I4_booked_outcome"}
    assert all(row[0] == "delivered" for row in delivery_rows(db_url, "stdout").values())
    with psycopg.connect(db_url) as conn:
        undelivered = conn.execute(
            "SELECT count(*) FROM guard.alerts WHERE delivered_at IS NULL"
        ).fetchone()
    assert undelivered == (0,), "alerts.delivered_at is set once every channel has it"
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and again.stdout == "", "a second run re-sent something"


def db_clock(url: str) -> datetime:
    [now] = fetch_one(url, "SELECT clock_timestamp()")
    assert isinstance(now, datetime)
    return now


def webhook_due_at(url: str, alert_id: int) -> datetime:
    query = (
        "SELECT next_attempt_at FROM guard.deliveries"
        " WHERE kind = 'alert' AND channel = 'webhook' AND subject = %s"
    )
    [due] = fetch_one(url, query, (alert_id,))
    assert isinstance(due, datetime)
    return due


@pytest.mark.serial
def test_webhook_http_500_is_retried_with_backoff(db_url: str, webhook: Webhook) -> None:
    # The retry time is bracketed by the database's clock read before and after the attempt, so a
    # slow machine widens the bracket instead of failing; the base delay is long enough that the
    # attempt right after a failure still falls inside the backoff.
    base = timedelta(seconds=0.5)
    settings = dataclasses.replace(FAST, backoff_base_s=base.total_seconds())
    [alert_id] = insert_alerts(db_url, 1)
    webhook.fail_next = 2
    dispatcher = Dispatcher(db_url, [(WebhookSink(webhook.url, timeout_s=1.0), 0)], settings)
    before = db_clock(db_url)
    dispatcher.run_once()
    after = db_clock(db_url)
    status, attempts, _, error, claimed_by = delivery_rows(db_url, "webhook")[alert_id]
    assert (status, attempts, error, claimed_by) == (
        "pending",
        1,
        "webhook answered HTTP 500",
        None,
    )
    due = webhook_due_at(db_url, alert_id)
    assert before + base <= due <= after + base, "first retry after the base delay"
    dispatcher.run_once()  # still inside the backoff: nothing is sent
    assert webhook.statuses == [500]
    wait_for(lambda: db_clock(db_url) >= due, 3, "the backoff to run out")
    before = db_clock(db_url)
    dispatcher.run_once()
    after = db_clock(db_url)
    status, attempts, _, error, _ = delivery_rows(db_url, "webhook")[alert_id]
    assert (status, attempts) == ("pending", 2) and webhook.statuses == [500, 500]
    due = webhook_due_at(db_url, alert_id)
    assert before + 2 * base <= due <= after + 2 * base, "second retry after twice the base delay"
    wait_for(lambda: (dispatcher.run_once() and False) or bool(webhook.bodies), 5, "delivery")
    status, attempts, _, error, _ = delivery_rows(db_url, "webhook")[alert_id]
    assert (status, attempts, error) == ("delivered", 3, None)
    assert webhook.delivered_ids() == [alert_id]


def test_webhook_refused_then_up(db_url: str, start_webhook: Callable[[int], Webhook]) -> None:
    from guard.demo.embedded import free_port

    port = free_port()  # nothing listens here yet
    ids = insert_alerts(db_url, 2)
    url = f"http://127.0.0.1:{port}/secret-path"
    dispatcher = Dispatcher(db_url, [(WebhookSink(url, timeout_s=1.0), 0)], FAST)
    stats = dispatcher.run_once()
    assert stats.failed_sends == 1 and stats.alerts_delivered == 0
    rows = delivery_rows(db_url, "webhook")
    error = rows[ids[0]][3]
    assert "unreachable" in error and "secret-path" not in error and str(port) not in error
    assert rows[ids[1]][1] == 0, "after a failure the rest of the batch waits, unsent"
    hook = start_webhook(port)
    wait_for(lambda: (dispatcher.run_once() and False) or len(hook.bodies) == 2, 5, "delivery")
    assert sorted(hook.delivered_ids()) == ids


def test_gives_up_after_max_attempts(db_url: str, webhook: Webhook) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    webhook.fail_next = 100
    settings = DispatchSettings(**{**FAST.__dict__, "max_attempts": 2, "backoff_base_s": 0.0})
    dispatcher = Dispatcher(db_url, [(WebhookSink(webhook.url, timeout_s=1.0), 0)], settings)
    dispatcher.run_once()
    dispatcher.run_once()
    assert delivery_rows(db_url, "webhook")[alert_id][:2] == ("failed", 2)
    dispatcher.run_once()
    assert len(webhook.statuses) == 2, "a failed delivery is not retried any more"


def test_smtp_4xx_is_retried_then_delivered(db_url: str, smtp_server: Mailbox) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    smtp_server.fail_next = 1
    sink = EmailSink(
        SmtpSettings("127.0.0.1", smtp_server.port, "guard@example.org", ["ops@example.org"])
    )
    dispatcher = Dispatcher(db_url, [(sink, 0)], FAST)
    dispatcher.run_once()
    assert delivery_rows(db_url, "email")[alert_id][:2] == ("pending", 1)
    assert delivery_rows(db_url, "email")[alert_id][3] == "SMTP answered 451"
    wait_for(lambda: (dispatcher.run_once() and False) or bool(smtp_server.messages), 3, "mail")
    [mail] = smtp_server.messages
    assert "Subject: [HIGH] booked_without_appointment: call " in mail
    assert f"alert #{alert_id}" in mail
    assert delivery_rows(db_url, "email")[alert_id][:2] == ("delivered", 2)


def test_emails_carry_rfc_5322_date_and_message_id(db_url: str, smtp_server: Mailbox) -> None:
    insert_alerts(db_url, 2)
    sink = EmailSink(
        SmtpSettings(
            "127.0.0.1", smtp_server.port, "Booking Guard <guard@example.org>", ["ops@example.org"]
        )
    )
    before = datetime.now(UTC).replace(microsecond=0)
    Dispatcher(db_url, [(sink, 0)], FAST).run_once()
    assert len(smtp_server.messages) == 2
    ids = set()
    for raw in smtp_server.messages:
        mail = email.message_from_string(raw, policy=email.policy.default)
        assert len(mail.get_all("Date", [])) == 1 and len(mail.get_all("Message-ID", [])) == 1
        sent = email.utils.parsedate_to_datetime(mail["Date"])
        assert sent.tzinfo is not None
        assert before <= sent <= datetime.now(UTC) + timedelta(seconds=1)
        message_id = str(mail["Message-ID"]).strip()  # may be folded (RFC 5322 CFWS)
        assert re.fullmatch(r"<[^<>@\s]+@example\.org>", message_id), message_id
        ids.add(message_id)
    assert len(ids) == 2, "every e-mail has its own Message-ID"


def test_no_phone_number_or_transcript_leaves_the_database(db_url: str, webhook: Webhook) -> None:
    details = {
        "caller_number": "+49 30 1234567",
        "transcript": "Hi, this is Erika, my number is +49 30 1234567",
        "booking_failure_reason": "customer +49 30 1234567 unreachable",
        "appointment_made": True,
    }
    insert_alerts(db_url, 1, details=details, message="call from +49 30 1234567 not booked")
    out = io.StringIO()
    sinks: list[tuple[Sink, int]] = [
        (WebhookSink(webhook.url, timeout_s=1.0), 0),
        (StdoutSink(out), 0),
    ]
    Dispatcher(db_url, sinks, FAST).run_once()
    [body] = webhook.bodies
    for text in (json.dumps(body), out.getvalue()):
        assert "1234567" not in text and "Erika" not in text and "transcript" not in text
        assert "caller_number" not in text
        assert "****567" in text, "the masked form is there: the message was built"
        assert "appointment_made" in text


def test_throttled_channel_sends_a_summary(db_url: str, webhook: Webhook) -> None:
    ids = insert_alerts(db_url, 10)
    stats = Dispatcher(db_url, [(WebhookSink(webhook.url, timeout_s=1.0), 3)], FAST).run_once()
    assert len(webhook.bodies) == 3, "3 messages per minute at most"
    assert ids_in(webhook.bodies[0]["text"]) == ids[:1]
    assert ids_in(webhook.bodies[1]["text"]) == ids[1:2]
    summary = webhook.bodies[2]["text"]
    assert summary.startswith("8 Booking Guard alerts (summary") and ids_in(summary) == ids[2:]
    assert (stats.messages_sent, stats.summaries_sent, stats.alerts_delivered) == (3, 1, 10)
    assert {row[0] for row in delivery_rows(db_url, "webhook").values()} == {"delivered"}


@pytest.mark.serial
def test_notify_wakes_the_dispatcher_at_once(db_url: str, webhook: Webhook) -> None:
    settings = DispatchSettings(**{**FAST.__dict__, "poll_interval_s": 60.0})
    dispatcher = Dispatcher(db_url, [(WebhookSink(webhook.url, timeout_s=1.0), 0)], settings)
    thread = threading.Thread(target=dispatcher.run_forever)
    thread.start()
    try:
        wait_for(
            lambda: (
                dispatcher.stats.poll_wakeups + dispatcher.stats.notify_wakeups == 0
                and _listening(db_url)
            ),
            10,
            "the dispatcher to LISTEN",
        )
        ids = insert_alerts(db_url, 1)
        took = wait_for(lambda: bool(webhook.bodies), 5, "the NOTIFY wake-up")
        assert took < 2.0, f"took {took:.2f} s with a 60 s poll interval"
        assert webhook.delivered_ids() == ids
        # An alert inserted while the first round still runs is delivered by that round; its
        # NOTIFY then wakes the dispatcher right after (counted once the wait returns).
        wait_for(lambda: dispatcher.stats.notify_wakeups >= 1, 2, "the NOTIFY wake-up counted")
    finally:
        dispatcher.stop()
        thread.join(timeout=10)
    assert not thread.is_alive(), "stop() did not end run_forever"
    assert dispatcher.stats.poll_wakeups == 0


def _listening(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'guard-watch'"
            " AND query LIKE 'LISTEN%%'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("lease", [1.0])
def test_lease_must_outlive_a_send(db_url: str, lease: float) -> None:
    from guard.errors import GuardError

    settings = DispatchSettings(**{**FAST.__dict__, "lease_s": lease, "send_timeout_s": 1.0})
    with pytest.raises(GuardError, match="twice the send timeout"):
        Dispatcher(db_url, [(StdoutSink(), 0)], settings)
