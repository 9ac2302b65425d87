"""Delivery survives any alert: one alert the dispatcher cannot render, among 1,000, is marked
failed on every channel with its reason, every other alert is delivered, and `guard watch`
keeps running. A lost connection is retried from the minimum delay after every outage, not from
where the last outage left off."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from guard.connection import RECONNECT_MIN_S, reconnect_delay
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import AlertRow, RenderError, plan_messages, safe_details
from guard.ops.dispatch.sinks import StdoutSink
from tests.dispatch.conftest import Webhook, insert_alerts, wait_for


def insert_poisoned_alert(url: str, details: str) -> int:
    """An alert whose details are not a JSON object, as a database has it that held such a row
    before the CHECK on guard.alerts existed (the CHECK is put back NOT VALID, the state the
    upgrade passes through before validating)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("ALTER TABLE guard.alerts DROP CONSTRAINT alerts_details_is_object")
        row = conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details) VALUES ('test:poison', 'booking_rolled_back', 7,"
            " 'call', 1, 'high', 'a booking failed and was rolled back', %s::jsonb)"
            " RETURNING id",
            (details,),
        ).fetchone()
        conn.execute(
            "ALTER TABLE guard.alerts ADD CONSTRAINT alerts_details_is_object"
            " CHECK (jsonb_typeof(details) = 'object') NOT VALID"
        )
    assert row is not None
    return int(row[0])


def _deliveries(url: str) -> dict[tuple[int, str], tuple[str, str | None]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT subject, channel, status, last_error FROM guard.deliveries WHERE kind = 'alert'"
        ).fetchall()
    return {(int(a), str(c)): (str(s), e) for a, c, s, e in rows}


def _row(alert_id: int, details: object) -> AlertRow:
    return AlertRow(
        alert_id, "check", "rule", 1, "call", 1, "high", "m", details, "open", 1, None, None
    )


def test_details_that_are_not_an_object_cannot_be_rendered() -> None:
    for details, kind in (("a string", "a string"), ([1, 2], "an array"), (3, "a number")):
        with pytest.raises(RenderError, match=f"details are {kind}, not a JSON object"):
            safe_details(details)
    plan = plan_messages([_row(1, {}), _row(2, [1]), _row(3, None)], None, "stdout")
    assert [m.alert_ids for m in plan.messages] == [(1,), (3,)]
    assert plan.unrenderable == {2: "details are an array, not a JSON object"}
    # over the rate limit the rest is summarised; a summary reads no details
    limited = plan_messages([_row(1, {}), _row(2, "x"), _row(3, "y")], 2, "webhook")
    assert [m.kind for m in limited.messages] == ["alert", "summary"]
    assert limited.messages[1].alert_ids == (2, 3)


@pytest.mark.slow
def test_a_poisoned_alert_among_1000_is_failed_and_the_rest_delivered(
    db_url: str, webhook: Webhook, tmp_path: Path
) -> None:
    before = insert_alerts(db_url, 500)
    poisoned = insert_poisoned_alert(db_url, '"a string"')
    after = insert_alerts(db_url, 499)
    good = before + after
    env = {**os.environ, "GUARD_SLACK_WEBHOOK_URL": webhook.url}
    argv = [
        sys.executable, "-m", "guard.cli", "--database-url", db_url, "watch",
        "--channel", "stdout", "--channel", "webhook", "--webhook-rate", "0",
        "--poll-interval", "0.5", "--log-level", "warning",
    ]  # fmt: skip
    out = (tmp_path / "stdout").open("w+b")  # a file, not a pipe: 1,000 lines fill a pipe
    watch = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE)
    try:
        wait_for(
            lambda: (
                sum(status != "pending" for status, _ in _deliveries(db_url).values())
                == 2 * (len(good) + 1)
            ),
            120,
            "every delivery of 1,000 alerts on two channels settled",
        )
        assert watch.poll() is None, "guard watch stopped"
        # ... and still delivers what comes next
        [late] = insert_alerts(db_url, 1)
        wait_for(
            lambda: _deliveries(db_url).get((late, "webhook"), ("",))[0] == "delivered",
            30,
            "an alert written after the poisoned one was handled",
        )
        assert watch.poll() is None, "guard watch stopped"
    finally:
        watch.send_signal(signal.SIGTERM)
        _, stderr = watch.communicate(timeout=30)
        out.seek(0)
        stdout = out.read()
        out.close()
    assert watch.returncode == 0, stderr.decode()

    deliveries = _deliveries(db_url)
    for channel in ("stdout", "webhook"):
        status, error = deliveries[(poisoned, channel)]
        assert status == "failed"
        assert error == "cannot render alert: details are a string, not a JSON object"
        assert {deliveries[(i, channel)][0] for i in [*good, late]} == {"delivered"}
    on_stdout = Counter(json.loads(line)["alert_id"] for line in stdout.decode().splitlines())
    assert set(on_stdout) == {*good, late}
    assert Counter(webhook.delivered_ids()).keys() == {*good, late}
    assert f"alert #{poisoned} cannot be rendered" in stderr.decode()
    print(
        f"\npoisoned alert: {len(good)} of {len(good) + 1} delivered (and 1 written after it),"
        " the poisoned one failed with its reason, on 2 channels"
    )


def test_reconnect_delay_doubles_from_the_minimum() -> None:
    assert [reconnect_delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def _reconnected(dispatcher: Dispatcher, times: int) -> Callable[[], bool]:
    return lambda: dispatcher.stats.reconnects >= times


def test_each_outage_is_retried_from_the_minimum_delay(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Three outages (the server ends the dispatcher's connections): each is retried after the
    minimum delay. The old loop kept counting failures across outages: 1 s, 2 s, then 4 s, and a
    later outage waited 30 s."""
    settings = DispatchSettings(
        poll_interval_s=0.2, lease_s=5.0, send_timeout_s=1.0, worker_id="outages"
    )
    dispatcher = Dispatcher(db_url, [(StdoutSink(stream=io.StringIO()), 0)], settings)
    caplog.set_level(logging.WARNING, logger="guard.dispatch")
    thread = threading.Thread(target=dispatcher.run_forever, daemon=True)
    thread.start()
    try:
        wait_for(lambda: dispatcher.stats.poll_wakeups > 0, 20, "the dispatcher serving")
        with psycopg.connect(db_url, autocommit=True) as admin:
            for outage in range(1, 4):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'guard-watch' AND datname = current_database()"
                )
                wait_for(_reconnected(dispatcher, outage), 20, f"reconnect {outage}")
    finally:
        dispatcher.stop()
        thread.join(timeout=10)
    delays = [
        float(r.getMessage().rsplit("retrying in ", 1)[1].split()[0])
        for r in caplog.records
        if "retrying in" in r.getMessage()
    ]
    assert delays == [RECONNECT_MIN_S] * 3
