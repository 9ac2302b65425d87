"""Resolved notifications, opt-in per channel: an alert a channel was sent is announced resolved
once on each channel that opted in, never on the others, and not at all when it had resolved
before it was sent (that message said so). Real PostgreSQL, stdout, a real webhook receiver and
a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Sequence

import psycopg
from click.testing import CliRunner

from guard.cli import main
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.sinks import EmailSink, Sink, SmtpSettings, StdoutSink, WebhookSink
from tests.dispatch.conftest import Mailbox, Webhook, insert_alerts

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


def _resolve(db_url: str, alert_ids: Sequence[int]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(),"
            " resolution = 'fixed' WHERE id = ANY(%s)",
            (list(alert_ids),),
        )


def _stdout(db_url: str, *extra: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "watch", "--once", "--channel", "stdout", *extra]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_opted_in_channel_is_told_once(db_url: str) -> None:
    ids = insert_alerts(db_url, 2)
    assert [m["type"] for m in _stdout(db_url, "--resolved", "stdout")] == ["alert", "alert"]
    _resolve(db_url, ids[:1])
    [notice] = _stdout(db_url, "--resolved", "stdout")
    assert notice["type"] == "resolved" and notice["alert_id"] == ids[0]
    assert notice["status"] == "resolved" and notice["resolved_at"]
    assert _stdout(db_url, "--resolved", "stdout") == [], "announced twice"
    _resolve(db_url, ids[1:])
    assert [m["alert_id"] for m in _stdout(db_url, "--resolved", "stdout")] == ids[1:]


def test_a_channel_that_did_not_opt_in_hears_nothing(db_url: str) -> None:
    ids = insert_alerts(db_url, 1)
    assert len(_stdout(db_url)) == 1
    _resolve(db_url, ids)
    assert _stdout(db_url) == []
    with psycopg.connect(db_url) as conn:
        looked = conn.execute(
            "SELECT resolution_queued_at FROM guard.deliveries"
            " WHERE kind = 'alert' AND subject = %s",
            (ids[0],),
        ).fetchone()
        queued = conn.execute(
            "SELECT count(*) FROM guard.deliveries WHERE kind = 'alert_resolved'"
        ).fetchone()
    assert (looked, queued) == ((None,), (0,))


def test_no_notice_for_an_alert_resolved_before_it_was_sent(db_url: str) -> None:
    ids = insert_alerts(db_url, 1)
    _resolve(db_url, ids)
    [fired] = _stdout(db_url, "--resolved", "stdout")
    assert fired["type"] == "alert" and fired["status"] == "resolved"
    assert _stdout(db_url, "--resolved", "stdout") == []


def test_per_channel_and_retried_when_the_channel_fails(
    db_url: str, webhook: Webhook, smtp_server: Mailbox
) -> None:
    email = EmailSink(
        SmtpSettings("127.0.0.1", smtp_server.port, "guard@example.org", ["ops@example.org"])
    )
    channels: list[tuple[Sink, int]] = [
        (StdoutSink(), 0),
        (WebhookSink(webhook.url), 0),
        (email, 0),
    ]
    settings = DispatchSettings(**{**FAST.__dict__, "resolved_channels": frozenset({"email"})})
    dispatcher = Dispatcher(db_url, channels, settings)
    [alert_id] = insert_alerts(db_url, 1)
    dispatcher.run_once()
    assert len(webhook.bodies) == 1 and len(smtp_server.messages) == 1
    _resolve(db_url, [alert_id])

    smtp_server.fail_next = 1
    stats = dispatcher.run_once()
    assert stats.failed_sends == 1 and len(smtp_server.messages) == 1
    with psycopg.connect(db_url, autocommit=True) as conn:  # its backoff is over
        conn.execute("UPDATE guard.deliveries SET next_attempt_at = now() - interval '1 s'")
    Dispatcher(db_url, channels, settings).run_once()
    assert len(smtp_server.messages) == 2
    assert "Subject: [RESOLVED] booked_without_appointment: call " in smtp_server.messages[1]
    assert f"alert #{alert_id}" in smtp_server.messages[1]
    assert len(webhook.bodies) == 1, "the webhook did not opt in"
    Dispatcher(db_url, channels, settings).run_once()
    assert len(smtp_server.messages) == 2, "announced twice"


def test_resolved_for_a_channel_not_delivered_to_is_an_error(db_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["--database-url", db_url, "watch", "--once", "--channel", "stdout", "--resolved", "email"],
    )
    assert result.exit_code == 2, "a configuration error, found at start"
    assert "resolved notifications for channel(s) not delivered to: email" in result.output
