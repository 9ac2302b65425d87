"""Real endpoints that misbehave: a webhook that redirects, one that trickles its answer a byte
at a time past the claim's lease (two dispatchers), an SMTP server that takes the mail and then
fails QUIT, an Alertmanager behind basic auth given as `user:password@` in its URL, and
receivers that rate-limit with Retry-After. Each test counts what the server received against
what guard.deliveries says: lost (marked delivered, never received) and duplicated
(received more than once)."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import Message
from guard.ops.dispatch.sinks import (
    AlertmanagerSink,
    DeliveryError,
    EmailSink,
    SmtpSettings,
    WebhookSink,
)
from tests.dispatch.conftest import delivery_rows, ids_in, insert_alerts, wait_for
from tests.dispatch.endpoints import Received, Reply, endpoint, quit_failing_smtp

FAST = DispatchSettings(
    poll_interval_s=0.5,
    batch_size=50,
    lease_s=4.0,
    send_timeout_s=1.0,
    max_attempts=5,
    backoff_base_s=0.2,
    backoff_max_s=2.0,
    worker_id="test",
)


def _settings(**changes: object) -> DispatchSettings:
    return DispatchSettings(**{**FAST.__dict__, **changes})


# -- 3xx -----


def test_a_redirect_is_a_failure_naming_where_it_points_never_a_silent_get(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 302 used to be followed as a GET without the body and marked delivered."""
    secret = "T9SECRETtoken42"

    def answer(request: Received) -> Reply:
        if request.method == "POST":
            location = f"http://127.0.0.1:9/services/{secret}?token={secret}"
            return Reply(302, {"Location": location})
        return Reply(200)

    ids = insert_alerts(db_url, 5)
    with endpoint(answer) as hook:
        dispatcher = Dispatcher(db_url, [(WebhookSink(hook.url("/hook"), 1.0), 0)], FAST)
        stats = dispatcher.run_once()
        methods = [r.method for r in hook.requests]
    rows = delivery_rows(db_url, "webhook")
    delivered = [i for i in ids if rows[i][0] == "delivered"]
    received = len(hook.posts())
    assert "GET" not in methods, "the redirect was followed"
    assert delivered == [] and stats.alerts_delivered == 0, "marked delivered, never received"
    assert received == 1, "after a failure the rest of the batch waits"
    error = rows[ids[0]][3]
    assert error == (
        "webhook answered HTTP 302, a redirect to http://127.0.0.1:9/services/***?token=***:"
        " not followed (configure the URL it points to)"
    )
    assert secret not in caplog.text and secret not in str(rows)
    assert rows[ids[0]][0] == "pending", "retried with backoff, like any failed send"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (299, None),  # the last success
        (300, "webhook answered HTTP 300, a redirect to no Location: not followed"),
        (399, "webhook answered HTTP 399, a redirect to no Location: not followed"),
        (400, "webhook answered HTTP 400"),  # a refusal, not a redirect
    ],
)
def test_a_status_is_a_success_a_redirect_or_a_refusal_at_each_edge(
    status: int, error: str | None
) -> None:
    with endpoint(lambda request: Reply(status)) as hook:
        sink = WebhookSink(hook.url("/hook"), 1.0)
        message = Message("alert", (1,), {"alert_id": 1}, "s", "t")
        if error is None:
            sink.send(message)
        else:
            with pytest.raises(DeliveryError) as failed:
                sink.send(message)
            assert str(failed.value).split(" (configure")[0] == error
        assert len(hook.posts()) == 1


# -- a trickling answer -----


def _run_two_dispatchers(db_url: str, url: str, settings: DispatchSettings, until: object) -> None:
    dispatchers = [
        Dispatcher(db_url, [(WebhookSink(url, settings.send_timeout_s), 0)], _with_id(settings, w))
        for w in ("first", "second")
    ]
    threads = [threading.Thread(target=d.run_forever) for d in dispatchers]
    for thread in threads:
        thread.start()
    try:
        assert callable(until)
        wait_for(until, 30, "the deliveries to settle")
        time.sleep(settings.lease_s + 1.0)  # long enough for a lease to run out and re-send
    finally:
        for d in dispatchers:
            d.stop()
        for thread in threads:
            thread.join(timeout=15)
    assert not any(t.is_alive() for t in threads)


def _with_id(settings: DispatchSettings, worker: str) -> DispatchSettings:
    return DispatchSettings(**{**settings.__dict__, "worker_id": worker})


@pytest.mark.parametrize(
    ("body_only", "status"),
    [(True, "delivered"), (False, "failed")],
    ids=["status-then-trickled-body", "everything-trickled"],
)
def test_a_trickling_answer_never_outlives_the_lease(
    db_url: str, body_only: bool, status: str
) -> None:
    """The server sends its answer 1 byte / 50 ms (a 200-byte body: 10 s, the lease is 4 s). A
    send has one total deadline (the send timeout, 1 s), so it ends inside its claim and the
    other dispatcher never sends the alert again: POSTs received == alerts.
    A 2xx status line that arrived in time is a delivery (the body does not matter); an answer
    whose status line did not is a failure (max_attempts 1: no retry within the test)."""
    ids = insert_alerts(db_url, 3)
    reply = Reply(200, body=b"x" * 200, trickle_s=0.05, trickle_body_only=body_only)
    settings = _settings(max_attempts=1)
    with endpoint(lambda _request: reply) as hook:

        def settled() -> bool:
            rows = delivery_rows(db_url, "webhook")
            return len(rows) == 3 and all(r[0] != "pending" for r in rows.values())

        _run_two_dispatchers(db_url, hook.url("/hook"), settings, settled)
        posts = hook.posts()
    per_alert = Counter(i for p in posts for i in ids_in(p.json()["text"]))
    assert sorted(per_alert) == ids
    assert max(per_alert.values()) == 1, f"an alert was sent twice: {per_alert}"
    assert len(posts) == len(ids)
    rows = delivery_rows(db_url, "webhook")
    assert {r[0] for r in rows.values()} == {status}
    if status == "failed":
        assert {r[3] for r in rows.values()} == {"webhook timed out: no answer within 1 s"}


def test_the_send_timeout_bounds_the_whole_send(db_url: str) -> None:
    """One send against the trickling server takes the send timeout, not the answer's length."""
    [alert_id] = insert_alerts(db_url, 1)
    reply = Reply(200, body=b"x" * 400, trickle_s=0.05)
    with endpoint(lambda _request: reply) as hook:
        dispatcher = Dispatcher(db_url, [(WebhookSink(hook.url("/hook"), 1.0), 0)], FAST)
        started = time.monotonic()
        dispatcher.run_once()
        took = time.monotonic() - started
    assert took < 4.0, f"the send took {took:.1f} s with a 1 s send timeout (the answer: 20 s)"
    assert delivery_rows(db_url, "webhook")[alert_id][3] == (
        "webhook timed out: no answer within 1 s"
    )


# -- SMTP: 250 after DATA, 421 at QUIT -----


def test_a_mail_accepted_after_data_is_delivered_whatever_quit_says(db_url: str) -> None:
    """The server takes each mail (250) and answers QUIT with 421: each alert is one mail, marked
    delivered at once (it used to be resent until given up: 10 mails per alert, all failed)."""
    ids = insert_alerts(db_url, 3)
    with quit_failing_smtp() as box:
        sink = EmailSink(
            SmtpSettings("127.0.0.1", box.port, "guard@example.org", ["ops@example.org"])
        )
        dispatcher = Dispatcher(db_url, [(sink, 0)], _settings(backoff_base_s=0.0, max_attempts=10))
        for _ in range(12):  # as many passes as the old code needed to give up
            dispatcher.run_once()
        mails, quits = list(box.messages), box.quits
    assert quits >= 3, "the server was asked to QUIT (and said 421)"
    per_alert = Counter(i for m in mails for i in ids_in(m))
    assert per_alert == Counter(ids), f"mails per alert: {per_alert}"
    rows = delivery_rows(db_url, "email")
    assert {i: r[:2] for i, r in rows.items()} == {i: ("delivered", 1) for i in ids}


# -- credentials in a URL -----


def test_credentials_in_the_alertmanager_url_are_sent_as_basic_auth(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    user, password = "guard+watch", "p@ss:w0rd/Z9"
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def answer(request: Received) -> Reply:
        ok = request.headers.get("Authorization") == expected
        ok = ok and request.path == "/am/api/v2/alerts"
        return Reply(200 if ok else 401)

    ids = insert_alerts(db_url, 3)
    with endpoint(answer) as am:
        url = f"http://guard%2Bwatch:p%40ss%3Aw0rd%2FZ9@127.0.0.1:{am.port}/am/"
        stats = Dispatcher(db_url, [(AlertmanagerSink(url, 1.0), 0)], FAST).run_once()
        posts = am.posts()
    assert stats.alerts_delivered == 3 and len(posts) == 3
    assert all(p.headers.get("Authorization") == expected for p in posts)
    assert all("@" not in p.headers.get("Host", "") for p in posts)
    rows = delivery_rows(db_url, "alertmanager")
    assert {r[0] for r in rows.values()} == {"delivered"} and sorted(rows) == ids
    assert "w0rd" not in caplog.text


def test_wrong_credentials_fail_without_showing_them(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    with endpoint(lambda _request: Reply(401)) as am:
        url = f"http://ops:Secr3tPassw0rd@127.0.0.1:{am.port}"
        Dispatcher(db_url, [(AlertmanagerSink(url, 1.0), 0)], FAST).run_once()
    error = delivery_rows(db_url, "alertmanager")[alert_id][3]
    assert error == "Alertmanager answered HTTP 401"
    assert "Secr3tPassw0rd" not in caplog.text


# -- Retry-After -----


def _http_date(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_s"),
    [
        (429, "3600", 3600),
        (503, "120", 120),
        (429, "date:900", 900),
        (503, "date:-60", 0.2),  # a date already past: the usual backoff
        (429, "86400", 3600),  # capped at retry_after_max_s (1 h)
        (429, "soon", 0.2),  # unreadable: the usual backoff
    ],
)
def test_retry_after_sets_the_next_attempt(
    db_url: str, status: int, retry_after: str, expected_s: float
) -> None:
    """A 429/503 with Retry-After used to be retried after the usual backoff (5, 10, 20, 40 s)."""
    ids = insert_alerts(db_url, 2)
    header = _http_date(float(retry_after[5:])) if retry_after.startswith("date:") else retry_after
    with endpoint(lambda _request: Reply(status, {"Retry-After": header})) as hook:
        dispatcher = Dispatcher(db_url, [(WebhookSink(hook.url("/hook"), 1.0), 0)], FAST)
        dispatcher.run_once()
        time.sleep(0.5)  # past the usual backoff (0.2 s)
        dispatcher.run_once()
        posts = len(hook.posts())
    rows = delivery_rows(db_url, "webhook")
    status_, attempts, wait, error, _ = rows[ids[0]]
    assert (status_, attempts) == ("pending", 1 if expected_s > 0.5 else 2)
    assert error.startswith(f"webhook answered HTTP {status}")
    if expected_s > 0.5:
        assert posts == 1, "sent again before the Retry-After"
        assert expected_s - 5 < wait.total_seconds() <= expected_s, wait
    else:
        assert posts == 2


def test_retry_after_holds_for_another_dispatcher_too(db_url: str) -> None:
    """The delay is stored with the delivery (next_attempt_at): a second dispatcher does not
    send it earlier either."""
    [alert_id] = insert_alerts(db_url, 1)
    with endpoint(lambda _request: Reply(429, {"Retry-After": "3600"})) as hook:
        url = hook.url("/hook")
        Dispatcher(db_url, [(WebhookSink(url, 1.0), 0)], _with_id(FAST, "a")).run_once()
        Dispatcher(db_url, [(WebhookSink(url, 1.0), 0)], _with_id(FAST, "b")).run_once()
        assert len(hook.posts()) == 1
    assert delivery_rows(db_url, "webhook")[alert_id][2].total_seconds() > 3500
