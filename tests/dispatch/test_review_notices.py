"""Review notices (`guard watch --review-notices`): an item opened with a subscribed priority is
announced once on every channel, never for a priority that is off, never for the queue that
was there before notices were switched on, never twice with two dispatchers, and without
personal data or active markup. Real PostgreSQL, a real webhook receiver, stdout through the
CLI."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
from click.testing import CliRunner

from guard.cli import main
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.sinks import StdoutSink, WebhookSink
from tests.dispatch.conftest import Webhook

FAST = DispatchSettings(
    poll_interval_s=30.0,
    batch_size=50,
    lease_s=3.0,
    send_timeout_s=1.0,
    max_attempts=5,
    backoff_base_s=0.2,
    backoff_max_s=1.0,
    worker_id="test",
    review_priorities=frozenset({0, 1}),
)


def _open(db_url: str, reason: str, call_id: int, details: dict[str, Any] | None = None) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT guard.enqueue_review(7, %s, NULL, %s, %s::jsonb)",
            (call_id, reason, json.dumps(details or {})),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _dispatcher(db_url: str, hook: Webhook, worker: str = "test", batch: int = 50) -> Dispatcher:
    settings = DispatchSettings(**{**FAST.__dict__, "worker_id": worker, "batch_size": batch})
    return Dispatcher(db_url, [(WebhookSink(hook.url, timeout_s=1.0), 0)], settings)


def _texts(hook: Webhook) -> list[str]:
    with hook.lock:
        return [str(body["text"]) for body in hook.bodies]


def test_an_opened_item_is_announced_once(db_url: str, webhook: Webhook) -> None:
    before = _open(db_url, "booking_outcome_unknown", 1)  # the queue before notices were on
    _dispatcher(db_url, webhook).run_once()
    assert _texts(webhook) == [], "the existing queue was announced"

    item = _open(db_url, "booking_outcome_unknown", 2, {"attempt_id": 55})
    stats = _dispatcher(db_url, webhook).run_once()
    [text] = _texts(webhook)
    assert stats.notices_sent.get("review_notice", 0) == 1
    assert text.startswith("[REVIEW P0] booking_outcome_unknown")
    assert f"review item #{item}" in text and "call 2 (company 7)" not in text
    assert "company 7, call 2" in text and "attempt_id=55" in text
    assert f"#{before}" not in text

    _dispatcher(db_url, webhook).run_once()
    assert len(_texts(webhook)) == 1, "announced twice"
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT subject, channel, status FROM guard.deliveries WHERE kind = 'review_notice'"
        ).fetchall()
    assert rows == [(item, "webhook", "delivered")]


def test_a_priority_that_is_off_is_not_announced(db_url: str, webhook: Webhook) -> None:
    _dispatcher(db_url, webhook).run_once()  # subscribes the webhook to priorities 0 and 1
    _open(db_url, "calendar_booking_failure", 3)  # priority 2
    _open(db_url, "other", 4)  # priority 5
    first = _open(db_url, "validation_failure", 5)  # priority 1
    _dispatcher(db_url, webhook).run_once()
    [text] = _texts(webhook)
    assert text.startswith("[REVIEW P1] validation_failure") and f"#{first}" in text
    # without the option, nothing is queued or sent for any priority
    plain = Dispatcher(
        db_url,
        [(WebhookSink(webhook.url, timeout_s=1.0), 0)],
        DispatchSettings(**{**FAST.__dict__, "review_priorities": frozenset()}),
    )
    _open(db_url, "booking_outcome_unknown", 6)
    plain.run_once()
    assert len(_texts(webhook)) == 1


def test_two_dispatchers_never_announce_one_item_twice(db_url: str, webhook: Webhook) -> None:
    _dispatcher(db_url, webhook).run_once()
    items = [_open(db_url, "booking_outcome_unknown", 100 + n) for n in range(30)]
    webhook.delay_s = 0.02  # both dispatchers are sending at the same time
    # small batches: each claims a few, sends them, and claims again while the other sends
    dispatchers = [_dispatcher(db_url, webhook, f"w{n}", batch=3) for n in range(2)]
    threads = [threading.Thread(target=d.run_once) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    announced = [int(t.split("review item #")[1].split(";")[0]) for t in _texts(webhook)]
    assert sorted(announced) == items, "an item announced twice or not at all"
    assert all(d.stats.notices_sent.get("review_notice", 0) > 0 for d in dispatchers), (
        "one did all the work"
    )


def test_a_failed_send_is_retried_after_its_backoff(db_url: str, webhook: Webhook) -> None:
    _dispatcher(db_url, webhook).run_once()
    item = _open(db_url, "booking_outcome_unknown", 9)
    webhook.fail_next = 1
    stats = _dispatcher(db_url, webhook).run_once()
    assert stats.failed_sends == 1 and _texts(webhook) == []
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT status, attempts, last_error IS NOT NULL, claimed_by FROM guard.deliveries"
            " WHERE kind = 'review_notice'"
        ).fetchall() == [("pending", 1, True, None)], "an attempt counted, retried after backoff"
        conn.execute("UPDATE guard.deliveries SET next_attempt_at = now() - interval '1 s'")
    _dispatcher(db_url, webhook).run_once()
    [text] = _texts(webhook)
    assert f"review item #{item}" in text


def test_what_is_sent_is_masked_and_inert(db_url: str, webhook: Webhook) -> None:
    _dispatcher(db_url, webhook).run_once()
    _open(
        db_url,
        "booking_outcome_unknown",
        10,
        {
            "caller_number": "+49 30 1234567",
            "transcript": "my number is 0301234567",
            "error": "calendar said <!channel> call +49 170 5550123",
            "booking_failure_reason": "<!channel> @here call 030 1234567 https://evil.example",
            "idempotency_key": "book-10-a7f3",
        },
    )
    _dispatcher(db_url, webhook).run_once()
    [text] = _texts(webhook)
    for secret in ("1234567", "5550123", "my number", "calendar said", "caller_number"):
        assert secret not in text, (secret, text)
    assert "030 ****567" in text  # a phone number in a whitelisted value is masked
    assert "<" not in text and "@here" not in text and "https://" not in text
    assert "\u2039!channel\u203a" in text and "book-10-a7f3" in text


def test_stdout_through_the_cli(db_url: str) -> None:
    def run(*extra: str) -> list[dict[str, Any]]:
        result = CliRunner().invoke(
            main, ["--database-url", db_url, "watch", "--once", "--channel", "stdout", *extra]
        )
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert run("--review-notices", "0") == []
    item = _open(db_url, "booking_outcome_unknown", 11, {"transcript": "+49 30 1234567"})
    [notice] = run("--review-notices", "0")
    assert notice["type"] == "review_item" and notice["review_item_id"] == item
    assert notice["priority"] == 0 and notice["details"] == {}
    assert run("--review-notices", "0") == []
    bad = CliRunner().invoke(main, ["--database-url", db_url, "watch", "--review-notices", "x"])
    assert bad.exit_code == 2 and "not a review priority" in bad.output


def test_stdout_sink_with_the_dispatcher(db_url: str) -> None:
    """The JSON payload keeps values exact (masked): a script reads the reason and ids."""
    import io

    out = io.StringIO()
    settings = DispatchSettings(**{**FAST.__dict__, "review_priorities": frozenset({1})})
    Dispatcher(db_url, [(StdoutSink(out), 0)], settings).run_once()
    _open(db_url, "validation_failure", 12, {"booking_failure_reason": "tel 5551234567"})
    Dispatcher(db_url, [(StdoutSink(out), 0)], settings).run_once()
    [line] = out.getvalue().splitlines()
    notice = json.loads(line)
    assert notice["reason"] == "validation_failure" and notice["call_id"] == 12
    assert notice["details"] == {"booking_failure_reason": "tel 555****567"}


def test_alertmanager_gets_one_alert_per_item_with_inert_labels() -> None:
    from guard.ops.dispatch.message import ReviewRow, review_message
    from guard.ops.dispatch.sinks import AlertmanagerSink

    row = ReviewRow(41, "booking_outcome_unknown", 0, "open", 7, 2, None, None, {"transcript": "x"})
    [alert] = AlertmanagerSink("http://127.0.0.1:9/").body(review_message(row))
    assert alert["labels"]["alertname"] == "booking_guard_review_item"
    assert alert["labels"]["severity"] == "critical"  # priority 0
    assert alert["labels"]["guard_review_item_id"] == "41"
    assert "transcript" not in json.dumps(alert)
