"""`guard watch --report CHANNEL`: each stored daily report is delivered once per channel, as the
Markdown `guard report --markdown` prints, phone numbers masked; two channels independently; a
report not stored yet waits for the job; a `guard watch` killed mid-delivery and restarted loses
no report and records each one once. Real PostgreSQL, a real webhook receiver and SMTP server,
real `guard watch` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

import psycopg
from click.testing import CliRunner

from guard.cli import main
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.sinks import EmailSink, Sink, SmtpSettings, WebhookSink
from tests.dispatch.conftest import Mailbox, Webhook, wait_for

FAST = DispatchSettings(
    poll_interval_s=30.0,
    batch_size=50,
    lease_s=3.0,
    send_timeout_s=1.0,
    max_attempts=5,
    backoff_base_s=0.2,
    backoff_max_s=1.0,
    worker_id="test",
    report_channels=frozenset({"webhook", "email"}),
)
# A company whose name carries a phone number: personal data that must not leave masked.
COMPANY = "Praxis Sonne +49 30 1234567"


def _today(db_url: str) -> date:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()
    assert row is not None
    today: date = row[0]
    return today


def _store_report(db_url: str, day: date, company_id: int = 7) -> None:
    """The rows the report job stores for a day (guard.daily_reports), one company."""
    issues = [
        {
            "rule_id": "booked_without_appointment",
            "severity": "high",
            "count": 3,
            "likely_cause": "calendar down; caller asked to ring 0301234567",
            "action": "guard review list",
        }
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.companies (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
            (company_id, COMPANY),
        )
        conn.execute(
            "INSERT INTO guard.daily_reports (report_date, company_id, total_calls,"
            " inconsistent_calls, inconsistency_rate_pct, auto_corrected, manual_reviews,"
            " open_review_items, by_rule, top_issues, trend)"
            " VALUES (%s, %s, 40, 3, 7.5, 1, 2, 2, %s::jsonb, %s::jsonb, %s::jsonb)",
            (
                day,
                company_id,
                json.dumps({"booked_without_appointment": 3}),
                json.dumps(issues),
                json.dumps({"direction": "no_data"}),
            ),
        )


def _subscribe_from(db_url: str, channels: list[str], first: date) -> None:
    """A subscription that starts earlier than yesterday (an operator may move it back)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for channel in channels:
            conn.execute(
                "INSERT INTO guard.report_subscriptions (channel, first_report_date)"
                " VALUES (%s, %s)",
                (channel, first),
            )


def _dispatcher(db_url: str, hook: Webhook, box: Mailbox) -> Dispatcher:
    email = EmailSink(
        SmtpSettings(
            host="127.0.0.1",
            port=box.port,
            sender="guard@example.org",
            recipients=["ops@example.org"],
            timeout_s=2.0,
        )
    )
    sinks: list[tuple[Sink, int]] = [(WebhookSink(hook.url, timeout_s=1.0), 0), (email, 0)]
    return Dispatcher(db_url, sinks, FAST)


def _texts(hook: Webhook) -> list[str]:
    with hook.lock:
        return [str(body["text"]) for body in hook.bodies]


def _deliveries(db_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT to_date(subject::text, 'YYYYMMDD'), channel, status FROM guard.deliveries"
            " WHERE kind = 'report' ORDER BY subject, channel"
        ).fetchall()


def test_a_stored_report_goes_once_to_each_channel(
    db_url: str, webhook: Webhook, smtp_server: Mailbox
) -> None:
    yesterday = _today(db_url) - timedelta(days=1)
    _dispatcher(db_url, webhook, smtp_server).run_once()  # subscribes; nothing stored yet
    assert _texts(webhook) == [] and smtp_server.messages == []

    _store_report(db_url, yesterday)  # the job stores yesterday's report
    stats = _dispatcher(db_url, webhook, smtp_server).run_once()
    assert stats.notices_sent["report"] == 2
    [text] = _texts(webhook)
    [mail] = smtp_server.messages
    assert text.startswith(f"# Booking Guard daily report, {yesterday} (UTC)")
    assert "| Praxis Sonne +49 30 ****567 | 40 |" in text  # the Markdown table, masked
    assert f"Subject: Booking Guard daily report, {yesterday} (UTC)" in mail
    assert f"X-Booking-Guard-Report: {yesterday}" in mail
    assert "## Top issues" in mail
    for sent in (text, mail):
        assert "1234567" not in sent, sent  # no phone number leaves unmasked
        assert "****567" in sent

    _dispatcher(db_url, webhook, smtp_server).run_once()
    assert len(_texts(webhook)) == 1 and len(smtp_server.messages) == 1, "sent twice"
    assert _deliveries(db_url) == [
        (yesterday, "email", "delivered"),
        (yesterday, "webhook", "delivered"),
    ]


def test_reports_stored_before_the_subscription_are_not_sent(
    db_url: str, webhook: Webhook, smtp_server: Mailbox
) -> None:
    today = _today(db_url)
    _store_report(db_url, today - timedelta(days=3))
    _store_report(db_url, today - timedelta(days=1))
    _dispatcher(db_url, webhook, smtp_server).run_once()
    [text] = _texts(webhook)
    assert f"report, {today - timedelta(days=1)} (UTC)" in text
    assert {row[0] for row in _deliveries(db_url)} == {today - timedelta(days=1)}


def test_two_channels_are_delivered_independently(
    db_url: str, webhook: Webhook, smtp_server: Mailbox
) -> None:
    yesterday = _today(db_url) - timedelta(days=1)
    _store_report(db_url, yesterday)
    webhook.fail_next = 1  # the webhook is down; e-mail is not
    stats = _dispatcher(db_url, webhook, smtp_server).run_once()
    assert stats.failed_sends == 1 and stats.notices_sent["report"] == 1
    assert len(smtp_server.messages) == 1 and _texts(webhook) == []
    assert _deliveries(db_url) == [
        (yesterday, "email", "delivered"),
        (yesterday, "webhook", "pending"),
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:  # its backoff is over
        conn.execute("UPDATE guard.deliveries SET next_attempt_at = now() - interval '1 s'")
    _dispatcher(db_url, webhook, smtp_server).run_once()
    assert len(_texts(webhook)) == 1
    assert len(smtp_server.messages) == 1, "e-mail got the report again"
    assert [row[2] for row in _deliveries(db_url)] == ["delivered", "delivered"]


def test_stdout_through_the_cli(db_url: str) -> None:
    yesterday = _today(db_url) - timedelta(days=1)
    _store_report(db_url, yesterday)

    def run() -> list[dict[str, Any]]:
        argv = ["--database-url", db_url, "watch", "--once", "--channel", "stdout"]
        result = CliRunner().invoke(main, [*argv, "--report", "stdout"])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    [line] = run()
    assert line["type"] == "report" and line["report_date"] == yesterday.isoformat()
    assert line["companies"] == 1 and "****567" in line["markdown"]
    assert "1234567" not in json.dumps(line)
    assert run() == []


def _start_watch(url: str, hook: Webhook, box: Mailbox) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GUARD_SLACK_WEBHOOK_URL": hook.url}
    argv = [sys.executable, "-m", "guard.cli", "--database-url", url, "watch"]
    argv += ["--channel", "webhook", "--channel", "email", "--report", "webhook"]
    argv += ["--report", "email", "--smtp-host", "127.0.0.1", "--smtp-port", str(box.port)]
    argv += ["--smtp-from", "guard@example.org", "--smtp-to", "ops@example.org"]
    argv += ["--webhook-rate", "0", "--email-rate", "0", "--lease", "2.5"]
    argv += ["--send-timeout", "1", "--poll-interval", "0.5", "--log-level", "warning"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _sent(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM guard.deliveries WHERE kind = 'report' AND status = 'delivered'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_kill_9_mid_delivery_and_restart_loses_no_report(
    db_url: str, webhook: Webhook, smtp_server: Mailbox
) -> None:
    today = _today(db_url)
    days = [today - timedelta(days=n) for n in range(6, 0, -1)]
    _subscribe_from(db_url, ["webhook", "email"], days[0])
    for day in days:
        _store_report(db_url, day)
    webhook.delay_s = 0.4  # the kill lands while a report is on its way
    first = _start_watch(db_url, webhook, smtp_server)
    try:
        wait_for(lambda: len(webhook.bodies) >= 2, 60, "two reports before the kill")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    assert _sent(db_url) < 2 * len(days), "everything was delivered before the kill"
    time.sleep(0.5)  # a request in flight at the kill lands; counted below
    second = _start_watch(db_url, webhook, smtp_server)
    try:
        wait_for(lambda: _sent(db_url) == 2 * len(days), 90, "every report on both channels")
    finally:
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=20)
    assert second.returncode == 0, stderr.decode()

    def reports(texts: list[str]) -> Counter[str]:
        return Counter(t.split("report, ")[1].split(" ")[0] for t in texts)

    by_hook = reports(_texts(webhook))
    by_mail = reports([m.split("Subject: Booking Guard daily ")[1] for m in smtp_server.messages])
    expected = {day.isoformat() for day in days}
    assert set(by_hook) == expected and set(by_mail) == expected, "a report was lost"
    duplicates = sum(n - 1 for n in by_hook.values()) + sum(n - 1 for n in by_mail.values())
    print(f"\nreport crash test: {len(days)} reports x 2 channels, duplicates {duplicates}")
    # one send per channel can be in flight at a kill: at most that one report is sent twice
    assert duplicates <= 2, f"{duplicates} duplicates: more than the sends in flight"
    # each report is recorded delivered exactly once per channel
    assert Counter((row[1], row[2]) for row in _deliveries(db_url)) == {
        ("email", "delivered"): len(days),
        ("webhook", "delivered"): len(days),
    }
