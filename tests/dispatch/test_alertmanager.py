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
from guard.embedded import free_port
from tests.dispatch.conftest import delivery_rows, insert_alerts

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
            "UPDATE guard.alert_deliveries SET status = 'pending', delivered_at = NULL,"
            " next_attempt_at = now() WHERE alert_id = %s",
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
    assert result.exit_code == 2
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
