"""The Alertmanager channel against a real Alertmanager (Debian's `prometheus-alertmanager`) on a
free loopback port: alerts arrive through API v2 with the labels routing and silences use, a
silence made in Alertmanager suppresses them, a re-send is merged, and an unreachable
Alertmanager is retried like any channel."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.demo.embedded import free_port
from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import Message, ReviewRow, review_message
from guard.ops.dispatch.sinks import AlertmanagerSink
from tests.dispatch.conftest import delivery_rows, insert_alerts
from tests.dispatch.endpoints import Reply, endpoint

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: on-call
  group_by: [alertname, company_id]
receivers:
  - name: on-call
"""


class Alertmanager:
    def __init__(self, workdir: Path) -> None:
        (workdir / "alertmanager.yml").write_text(CONFIG)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "alertmanager.log").open("w")
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip port: a single instance
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            assert time.monotonic() < deadline, "Alertmanager did not become ready"
            time.sleep(0.2)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, "Alertmanager exited; see alertmanager.log"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            result: list[dict[str, Any]] = json.loads(response.read())
            return result

    def silence(self, name: str, value: str) -> None:
        now = datetime.now(UTC)
        body = {
            "matchers": [{"name": name, "value": value, "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "on-call",
            "comment": "planned calendar maintenance",
        }
        request = urllib.request.Request(
            f"{self.url}/api/v2/silences",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def alertmanager() -> Iterator[Alertmanager]:
    workdir = Path(tempfile.mkdtemp(prefix="guard-alertmanager-"))
    server = Alertmanager(workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _watch_once(db_url: str, url: str) -> Any:
    fast = ["--retry-base", "0.1", "--send-timeout", "2", "--lease", "5"]
    return CliRunner(env={"GUARD_ALERTMANAGER_URL": url}).invoke(
        main, ["--database-url", db_url, "watch", "--once", "--channel", "alertmanager", *fast]
    )


def _wait_for_alerts(server: Alertmanager, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        alerts = server.alerts()
        if len(alerts) >= n or time.monotonic() > deadline:
            return alerts
        time.sleep(0.1)


def test_alerts_reach_alertmanager_with_their_labels(
    db_url: str, alertmanager: Alertmanager
) -> None:
    ids = insert_alerts(db_url, 2, message="booked, no appointment for +49 30 1234567")
    result = _watch_once(db_url, alertmanager.url)
    assert result.exit_code == 0, result.output
    alerts = _wait_for_alerts(alertmanager, 2)
    by_id = {a["labels"]["guard_alert_id"]: a for a in alerts}
    assert set(by_id) == {str(i) for i in ids}
    first = by_id[str(ids[0])]
    assert first["labels"] == {
        "alertname": "booked_without_appointment",
        "rule": "I4_booked_outcome",
        "severity": "high",
        "source": "booking-guard",
        "guard_alert_id": str(ids[0]),
        "company_id": "7",
        "entity_type": "call",
        "entity_id": "1001",
    }
    assert first["status"]["state"] == "active"
    assert first["receivers"][0]["name"] == "on-call"
    summary = first["annotations"]["summary"]
    assert summary.startswith("[HIGH] booked_without_appointment: call 1001 (company 7)")
    assert "1234567" not in first["annotations"]["description"], "phone number left unmasked"
    ends = datetime.fromisoformat(first["endsAt"].replace("Z", "+00:00"))
    assert ends > datetime.now(UTC) + timedelta(hours=23), "an alert sent once must not expire"
    assert all(row[0] == "delivered" for row in delivery_rows(db_url, "alertmanager").values())


def test_a_silence_in_alertmanager_suppresses_and_a_resend_is_merged(
    db_url: str, alertmanager: Alertmanager
) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    alertmanager.silence("alertname", "booked_without_appointment")
    assert _watch_once(db_url, alertmanager.url).exit_code == 0
    [alert] = _wait_for_alerts(alertmanager, 1)
    assert alert["status"]["state"] == "suppressed"
    assert alert["status"]["silencedBy"], "the silence made in Alertmanager applies"

    # At least once: a dispatcher that dies after sending sends again; Alertmanager merges.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.deliveries SET status = 'pending', delivered_at = NULL,"
            " next_attempt_at = now() WHERE kind = 'alert' AND subject = %s",
            (alert_id,),
        )
    assert _watch_once(db_url, alertmanager.url).exit_code == 0
    time.sleep(0.5)
    assert len(alertmanager.alerts()) == 1


def test_a_resolved_alert_is_sent_with_its_end(db_url: str, alertmanager: Alertmanager) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(),"
            " resolution = 'fixed' WHERE id = %s",
            (alert_id,),
        )
    assert _watch_once(db_url, alertmanager.url).exit_code == 0
    deadline = time.monotonic() + 10
    while alertmanager.alerts() and time.monotonic() < deadline:
        time.sleep(0.1)
    # API v2 lists active alerts only: an alert whose endsAt has passed is not among them.
    assert alertmanager.alerts() == []
    assert delivery_rows(db_url, "alertmanager")[alert_id][0] == "delivered"


def test_alertmanager_down_is_retried(db_url: str) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    result = _watch_once(db_url, f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "1 send(s) failed" in result.output
    status, attempts, _, error, _ = delivery_rows(db_url, "alertmanager")[alert_id]
    assert (status, attempts) == ("pending", 1)
    assert error.startswith("Alertmanager unreachable")


def test_alertmanager_url_must_be_http() -> None:
    result = CliRunner(env={"GUARD_ALERTMANAGER_URL": "ftp://am"}).invoke(
        main, ["--database-url", "postgresql://x/y", "watch", "--once", "--channel", "alertmanager"]
    )
    assert result.exit_code == 2, "a malformed setting is a usage error (README's exit codes)"
    assert "GUARD_ALERTMANAGER_URL" in result.output and "ftp://am" not in result.output


def test_resolved_notification_ends_the_alert_in_alertmanager(
    db_url: str, alertmanager: Alertmanager
) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    env = {"GUARD_ALERTMANAGER_URL": alertmanager.url}
    args = ["--database-url", db_url, "watch", "--once", "--channel", "alertmanager"]
    args += ["--resolved", "alertmanager"]
    assert CliRunner(env=env).invoke(main, args).exit_code == 0
    [alert] = _wait_for_alerts(alertmanager, 1)
    assert alert["status"]["state"] == "active"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(),"
            " resolution = 'fixed' WHERE id = %s",
            (alert_id,),
        )
    result = CliRunner(env=env).invoke(main, args)
    assert result.exit_code == 0, result.output
    assert '"resolved_sent": 1' in result.stderr
    deadline = time.monotonic() + 10
    while alertmanager.alerts() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alertmanager.alerts() == [], "endsAt of the resolved notice ends the alert"


# -- clocks that disagree ---------------------------------------------------------------------
# The alert's times come from the database's clock (first_seen_at, last_seen_at, resolved_at),
# the hold from the dispatcher's. When the dispatcher's clock was 2 days behind, `endsAt` (its
# now + 24 h) fell before `startsAt` (the database's first_seen_at): Alertmanager answered 400
# and the alerts stayed pending, with nothing in the log saying why.


def _shift_alerts(db_url: str, ids: list[int], interval: str) -> None:
    """The alerts' times as a database clock `interval` ahead of this process's would write
    them (first and last seen, and the resolution when there is one)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET first_seen_at = first_seen_at + %s::interval,"
            " last_seen_at = last_seen_at + %s::interval,"
            " resolved_at = resolved_at + %s::interval WHERE id = ANY(%s)",
            (interval, interval, interval, ids),
        )


def _times(alert: dict[str, Any]) -> tuple[datetime, datetime]:
    starts = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    return starts, ends


def test_database_clock_two_days_ahead_still_delivers(
    db_url: str, alertmanager: Alertmanager
) -> None:
    ids = insert_alerts(db_url, 2)
    _shift_alerts(db_url, ids, "2 days")
    result = _watch_once(db_url, alertmanager.url)
    assert result.exit_code == 0, result.output
    alerts = _wait_for_alerts(alertmanager, 2)
    assert {a["labels"]["guard_alert_id"] for a in alerts} == {str(i) for i in ids}
    for alert in alerts:
        starts, ends = _times(alert)
        assert ends >= starts, alert
        # held from the alert's own last sighting: still firing on Alertmanager's clock
        assert ends > datetime.now(UTC) + timedelta(days=2, hours=23), alert
        assert alert["status"]["state"] == "active"
    assert {r[0] for r in delivery_rows(db_url, "alertmanager").values()} == {"delivered"}


def test_dispatcher_clock_two_days_behind_still_delivers(
    db_url: str, alertmanager: Alertmanager
) -> None:
    """The sink's clock is its seam: a dispatcher whose clock is 2 days behind the database's
    (and Alertmanager's)."""

    def behind() -> datetime:
        return datetime.now(UTC) - timedelta(days=2)

    sink = AlertmanagerSink(alertmanager.url, timeout_s=2.0, clock=behind)
    ids = insert_alerts(db_url, 2)
    settings = DispatchSettings(lease_s=5.0, send_timeout_s=2.0, backoff_base_s=0.1)
    stats = Dispatcher(db_url, [(sink, 0)], settings).run_once()
    assert stats.failed_sends == 0 and stats.alerts_delivered == 2
    # A review notice: opened (created_at) on the database's clock.
    sink.send(
        review_message(
            ReviewRow(
                42, "booking_outcome_unknown", 0, "open", 7, 1001, None, datetime.now(UTC), {}
            )
        )
    )
    alerts = _wait_for_alerts(alertmanager, 3)
    assert {a["labels"].get("guard_alert_id") for a in alerts} == {*map(str, ids), None}
    for alert in alerts:
        starts, ends = _times(alert)
        assert ends >= starts, alert
        assert alert["status"]["state"] == "active", "held from the newest time it knows of"


def test_a_resolution_before_the_first_sighting_is_accepted(
    db_url: str, alertmanager: Alertmanager
) -> None:
    """Rows written by clocks that disagree: resolved "before" first seen. Alertmanager gets an
    alert that starts and ends at once (resolved), not a 400."""
    [alert_id] = insert_alerts(db_url, 1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolution = 'fixed',"
            " first_seen_at = now() + interval '2 days', last_seen_at = now() + interval '2 days',"
            " resolved_at = now() WHERE id = %s",
            (alert_id,),
        )
    result = _watch_once(db_url, alertmanager.url)
    assert result.exit_code == 0, result.output
    assert delivery_rows(db_url, "alertmanager")[alert_id][0] == "delivered"


def test_a_refusal_is_logged_with_alertmanagers_reason(
    db_url: str, alertmanager: Alertmanager, caplog: pytest.LogCaptureFixture
) -> None:
    """What the issue saw, reproduced through the sink's seam (an alert that ends before it
    starts): the real Alertmanager's 400 and its reason, in the log and in last_error."""

    class EndsBeforeItStarts(AlertmanagerSink):
        def body(self, message: Message) -> list[dict[str, Any]]:
            [alert] = super().body(message)
            alert["endsAt"] = "2020-01-01T00:00:00+00:00"
            return [alert]

    [alert_id] = insert_alerts(db_url, 1)
    sink = EndsBeforeItStarts(alertmanager.url, timeout_s=2.0)
    settings = DispatchSettings(lease_s=5.0, send_timeout_s=2.0, backoff_base_s=0.1)
    with caplog.at_level("WARNING", logger="guard.dispatch"):
        stats = Dispatcher(db_url, [(sink, 0)], settings).run_once()
    assert stats.failed_sends == 1
    status, attempts, _, error, _ = delivery_rows(db_url, "alertmanager")[alert_id]
    assert (status, attempts) == ("pending", 1)
    assert error == "Alertmanager answered HTTP 400: start time must be before end time", error
    assert "HTTP 400: start time must be before end time" in caplog.text


def test_a_refusals_reason_is_bounded_one_line_and_redacted(db_url: str) -> None:
    """A receiver's answer is data: cut to 300 characters, one line, control characters
    escaped, the URL's credentials and phone numbers never quoted back."""

    password = "Sup3rSecretPassw0rd"
    body = json.dumps(
        f"bad request from ops:{password}@ for +49 30 1234567\n\x1b[31mforged line" + "x" * 100_000
    ).encode()
    reply = Reply(400, {"Content-Type": "application/json"}, body)
    [alert_id] = insert_alerts(db_url, 1)
    with endpoint(lambda _request: reply) as am:
        sink = AlertmanagerSink(f"http://ops:{password}@127.0.0.1:{am.port}/", timeout_s=2.0)
        settings = DispatchSettings(lease_s=5.0, send_timeout_s=2.0, backoff_base_s=0.1)
        Dispatcher(db_url, [(sink, 0)], settings).run_once()
    error = delivery_rows(db_url, "alertmanager")[alert_id][3]
    assert error.startswith("Alertmanager answered HTTP 400: bad request from ***@ for"), error
    assert password not in error and "1234567" not in error
    assert "\n" not in error and "\x1b" not in error and "\\x1b[31m" in error
    assert len(error) < 400, len(error)
