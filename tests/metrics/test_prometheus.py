"""The shipped alert rules and dashboard in a real Prometheus server (Debian's `prometheus`).

Prometheus scrapes a real `guard metrics` process with the scrape config of docs/metrics.md, and
this test process's own /metrics (the breaker counters, as an application serves them). The
situation is real: a job run fails through `guard jobs run`, a circuit opens after failing calls
(persisted to PostgreSQL by the breaker's write-behind), PostgreSQL is stopped. Only the timing
is changed: 1 s scrape and evaluation intervals and the rules' `for:` durations set to 1 s;
expressions, labels and annotations are the shipped ones.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from prometheus_client import start_http_server

from guard.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, PostgresWriteBehind
from guard.cli import main
from guard.demo.embedded import free_port
from tests.support.pg_node import PgNode, migrated_node
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = "/usr/bin/prometheus"
JOB = "calendar_sync"
# A circuit whose recovery the history holds (its opening and its closing after probes).
RECOVERED = "appointment_booking:service:8"

pytestmark = pytest.mark.slow


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode())


def _wait_for(what: str, probe: Callable[[], Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s:g} s; last: {last!r}")


def _documented_scrape_config(target: str) -> str:
    """The scrape config block of docs/metrics.md, pointed at the test's exporter."""
    doc = (ROOT / "docs/metrics.md").read_text()
    match = re.search(r"```yaml\n(scrape_configs:\n.*?)```", doc, re.DOTALL)
    assert match, "docs/metrics.md has no scrape config block"
    block = match.group(1)
    assert "db-host.example:10187" in block
    block = block.replace("db-host.example:10187", target)
    return re.sub(r"(scrape_interval|scrape_timeout): \S+", r"\1: 1s", block)


def _fast_rules() -> str:
    rules = (ROOT / "docs/prometheus/alert-rules.yml").read_text()
    shortened, n = re.subn(r"^(\s+for:) \S+$", r"\1 1s", rules, flags=re.MULTILINE)
    assert n >= 5
    return shortened


class Prometheus:
    def __init__(self, workdir: Path, scrape_configs: str, rules: str) -> None:
        (workdir / "rules.yml").write_text(rules)
        (workdir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - rules.yml\n" + scrape_configs
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_for("Prometheus ready", self._ready, 30)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, "prometheus exited; see prometheus.log"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def firing(self) -> list[dict[str, Any]]:
        alerts = _get(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = _get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="guard-prometheus-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def node() -> Iterator[PgNode]:
    with migrated_node() as pg:
        yield pg


def _fire(prometheus: Prometheus, alert: str, **labels: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for candidate in prometheus.firing():
            have = candidate["labels"]
            if have["alertname"] == alert and all(have.get(k) == v for k, v in labels.items()):
                return candidate
        return None

    result: dict[str, Any] = _wait_for(f"{alert} {labels} firing", found)
    return result


def _failing_circuit(database_url: str, redis_url: str, key: str) -> CircuitBreaker:
    """Six failing calls of a circuit with threshold 6: open, persisted to PostgreSQL."""
    writer = PostgresWriteBehind(database_url)
    config = BreakerConfig(failure_threshold=6, cooldown_seconds=600, call_timeout_seconds=None)
    breaker = CircuitBreaker(key, config, redis_url=redis_url, listeners=(writer,))

    def calendar() -> None:
        raise ConnectionRefusedError("calendar refused the connection")

    for _ in range(6):
        with pytest.raises(ConnectionRefusedError):
            breaker.call(calendar)
    with pytest.raises(CircuitOpenError):
        breaker.call(calendar)
    assert writer.flush(10), "the open transition did not reach PostgreSQL"
    writer.close()
    return breaker


def _legend(template: str, labels: dict[str, str]) -> str:
    names = re.findall(r"\{\{\s*(\w+)\s*\}\}", template)
    missing = [name for name in names if name not in labels]
    assert not missing, f"legend {template!r} uses labels the series lacks: {missing}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)


def test_rules_fire_on_a_real_situation_and_name_the_job_and_circuit(
    node: PgNode, redis_url: str, workdir: Path
) -> None:
    database_url = node.url()
    key = "appointment_booking:service:7"
    command = [sys.executable, "-m", "guard.cli", "--database-url", database_url]
    # A statement timeout below the test's 1 s scrape timeout: a locked table must make its
    # series stale, not the scrape time out (the shipped 2 s fit the documented 10 s).
    exporter = subprocess.Popen(
        # Cached series read every second, so counters move within the test's seconds.
        [
            *command,
            "metrics",
            "--port",
            "0",
            "--statement-timeout-ms",
            "300",
            "--cache-interval",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    app_server, app_thread = start_http_server(0, addr="127.0.0.1")
    prometheus: Prometheus | None = None
    try:
        assert exporter.stderr is not None
        serving = re.search(r"serving http://(\S+)/metrics", exporter.stderr.readline())
        assert serving
        application_job = (
            "  - job_name: booking-app\n    static_configs:\n"
            f'      - targets: ["127.0.0.1:{app_server.server_port}"]\n'
        )
        prometheus = Prometheus(
            workdir, _documented_scrape_config(serving.group(1)) + application_job, _fast_rules()
        )
        # The circuit's counters exist (at 0) before it fails, as in a running application.
        breaker = CircuitBreaker(key, BreakerConfig(failure_threshold=6), redis_url=redis_url)
        _wait_for(
            "the application's counters scraped",
            lambda: prometheus.query(f'guard_breaker_failures_total{{key="{key}"}}'),
        )

        # A job run that really fails, through the runner on-call uses.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description)"
                f" VALUES ('{JOB}', '*/5 * * * *', 300, 'SELECT 1 / 0', 'syncs the calendar')"
            )
        run = CliRunner().invoke(
            main, ["--database-url", database_url, "jobs", "run", "--once", "--job", JOB]
        )
        assert run.exit_code == 1 and f"{JOB}: failed" in run.output, run.output
        del breaker
        # Kept, as an application keeps its breakers: the series sums the live ones
        # (docs/breaker.md), and one collected before a scrape would take its failures along.
        failing_breaker = _failing_circuit(database_url, redis_url, key)

        job_failed = _fire(prometheus, "BookingGuardJobFailed", job_name=JOB)
        assert job_failed["annotations"]["summary"] == f"The last run of job {JOB} failed"
        assert job_failed["labels"]["job"] == "booking-guard"  # the scrape job, untouched
        assert "exported_job" not in job_failed["labels"]

        circuit_open = _fire(prometheus, "BookingGuardCircuitOpen", key=key)
        assert (
            circuit_open["annotations"]["summary"] == f"Circuit {key} has been open for 5 minutes"
        )

        failing = _fire(prometheus, "BookingGuardCircuitCallsFailing", key=key, reason="error")
        assert key in failing["annotations"]["summary"]
        assert "failed (error)" in failing["annotations"]["summary"]
        assert failing_breaker.failed_calls == 6

        firing_names = {a["labels"]["alertname"] for a in prometheus.firing()}
        assert "BookingGuardExporterDown" not in firing_names

        # The counters exist at 0 before anything happens (increase() needs a first sample),
        # then the booking path fails, a validation fails and detection opens alerts.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO guard.breaker_state (key, state, generation, changed_at)"
                " VALUES (%s, 'closed', 1, now())",
                (RECOVERED,),
            )
        _wait_for(
            "the counters scraped at 0",
            lambda: (
                prometheus.query('guard_bookings_total{outcome="failed"} == 0')
                and prometheus.query('guard_alerts_opened_total{check_id="cross_tenant_link"} == 0')
                and prometheus.query('guard_booking_retries_total{outcome="exhausted"} == 0')
                and prometheus.query(
                    f'guard_breaker_recovery_seconds_count{{key="{RECOVERED}"}} == 0'
                )
            ),
        )
        _bookings_fail_and_inconsistencies_appear(database_url)
        ratio = _fire(prometheus, "BookingGuardBookingFailureRatioHigh")
        assert (
            "of the booking attempts settled in 30 minutes failed"
            in (ratio["annotations"]["summary"])
        )
        validation = _fire(prometheus, "BookingGuardValidationFailures")
        assert "failed their validation" in validation["annotations"]["summary"]
        detected = _fire(
            prometheus, "BookingGuardInconsistenciesDetected", rule_id="I5_tenant_link"
        )
        assert "rule I5_tenant_link" in detected["annotations"]["summary"]

        _wait_for(
            "the retries and the recovery scraped",
            lambda: (
                prometheus.query('guard_booking_retries_total{outcome="exhausted"} == 6')
                and prometheus.query(
                    f'guard_breaker_recovery_seconds_count{{key="{RECOVERED}"}} == 1'
                )
            ),
        )
        _dashboard_queries_resolve(prometheus, key)

        # Every series read, none stale.
        stale = prometheus.query("guard_series_stale")
        assert {s["metric"]["series"]: s["value"][1] for s in stale} == {
            name: "0"
            for name in (
                "alerts",
                "breaker",
                "latency",
                "jobs",
                "targets",
                "kpis",
                "review",
                "consistency",
                "corrections",
                "deliveries",
                "counters",
            )
        }
        # The KPI rules compare with the targets the exporter reads from guard.settings: with the
        # review queue's target lowered to 0 and one item open, the rule's own expression holds
        # (its 30 minutes are not waited for).
        queue_rule = re.search(
            r"alert: BookingGuardReviewQueueLarge\n\s+expr: (.+)\n",
            (ROOT / "docs/prometheus/alert-rules.yml").read_text(),
        )
        assert queue_rule is not None
        assert prometheus.query(queue_rule.group(1)) == [], "within its default target of 10"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE guard.settings SET value = '0' WHERE key = 'target_review_queue_max'"
            )
            conn.execute(
                "INSERT INTO guard.review_items (company_id, call_id, reason)"
                " VALUES (1, 12, 'other')"
            )
        _wait_for(
            "the review queue rule's expression above a target of 0",
            lambda: prometheus.query(queue_rule.group(1)),
        )
        # A session holds guard.validation_metrics locked: the latency series goes stale, the
        # others stay, and it is not ExporterDown.
        with psycopg.connect(database_url) as locker:
            locker.execute("LOCK TABLE guard.validation_metrics IN ACCESS EXCLUSIVE MODE")
            series_stale = _fire(prometheus, "BookingGuardSeriesStale", series="latency")
            assert "latency" in series_stale["annotations"]["summary"]
            firing_names = {a["labels"]["alertname"] for a in prometheus.firing()}
            assert "BookingGuardExporterDown" not in firing_names
            assert prometheus.query(f'guard_breaker_state{{key="{key}",state="open"}} == 1')

        # PostgreSQL goes away: the exporter stays up and says guard_up 0.
        node.stop()
        down = _fire(prometheus, "BookingGuardExporterDown")
        assert down["labels"]["instance"] == serving.group(1)
        assert serving.group(1) in down["annotations"]["summary"]
        assert exporter.poll() is None
    finally:
        if prometheus is not None:
            prometheus.close()
        app_server.shutdown()
        app_thread.join(timeout=5)
        exporter.terminate()
        exporter.wait(timeout=10)


def _bookings_fail_and_inconsistencies_appear(database_url: str) -> None:
    """Six bookings fail through the booking journal's functions (settled failed after asking
    the calendar three times, rolled back), one booking fails its validation (validate_booking:
    no such appointment), detection opens eleven alerts of one rule, and a circuit recovers two
    minutes after it opened (its transitions as the breaker's write-behind records them)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.companies (id, name) VALUES (1, 'Praxis A')")
        conn.execute("INSERT INTO public.services (id, company_id, name) VALUES (1, 1, 'Checkup')")
        conn.execute(
            "INSERT INTO public.calls (id, company_id) SELECT g, 1 FROM generate_series(1, 12) AS g"
        )
        for call in range(1, 7):
            row = conn.execute(
                "SELECT idempotency_key FROM guard.begin_booking_attempt(%s, 1)", (call,)
            ).fetchone()
            assert row is not None
            conn.execute(
                "SELECT guard.fail_booking_attempt(%s, 'calendar_booking_failure',"
                " '{\"calendar_calls\": 3}')",
                row,
            )
        [(ok, reason)] = conn.execute(
            "SELECT ok, reason FROM guard.validate_booking(7, 999999, 'uid-7')"
        ).fetchall()
        assert (ok, reason) == (False, "appointment_not_found")
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message) SELECT 'x:' || g, 'cross_tenant_link', 1, 'call', g, 'critical',"
            " 'linked to another company' FROM generate_series(1, 11) AS g"
        )
        conn.execute(
            "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
            " host, pid, occurred_at) VALUES"
            " (%(key)s, 2, 'closed', 'open', '3 consecutive failures', 'h', 1,"
            "  now() - interval '120 seconds'),"
            " (%(key)s, 3, 'open', 'half_open', 'cooldown over', 'h', 1,"
            "  now() - interval '90 seconds'),"
            " (%(key)s, 4, 'half_open', 'closed', '2 probes succeeded', 'h', 1, now())",
            {"key": RECOVERED},
        )


def _dashboard_queries_resolve(prometheus: Prometheus, key: str) -> None:
    """Every dashboard query is valid PromQL on the real server; where it has data, its legend
    resolves from the series' own labels and tells the series apart."""
    dashboard = json.loads((ROOT / "docs/grafana/booking-guard.json").read_text())
    legends: dict[str, set[str]] = {}
    for panel in dashboard["panels"]:
        if panel["datasource"]["type"] != "prometheus":
            continue  # the reporting views: tests/metrics/test_dashboard_sql.py
        for target in panel["targets"]:
            series = prometheus.query(target["expr"])
            rendered = [_legend(target["legendFormat"], s["metric"]) for s in series]
            if "{{" in target["legendFormat"]:
                assert len(set(rendered)) == len(rendered), (panel["title"], rendered)
            legends.setdefault(panel["title"], set()).update(rendered)
    assert JOB in legends["Jobs: last run failed"]
    assert legends["Jobs: last run failed"] <= {
        "daily_report",
        "detect_queue",
        "detect",
        "reconcile",
        "retention",
        "review_sweep",
        "sweep",
        JOB,
    }
    assert f"{key} open" in legends["Circuit state (1 = in state)"]
    assert "failed" in legends["Bookings by outcome / 1 h"]
    assert "appointment_not_found" in legends["Validation failures by reason / 1 h"]
    assert "I5_tenant_link" in legends["Inconsistencies detected / 1 h by rule"]
    assert (
        f"{key} error"
        in legends["Failed and timed-out guarded calls / 5 min (application processes)"]
    )
    assert {"p50 failed", "p95 failed"} <= legends["Booking latency by outcome (30 min)"]
    assert f"mean {RECOVERED}" in legends["Circuit recovery time by circuit (24 h)"]
    assert legends["Retry success rate (1 h)"] == {"booked after a retry"}
    # a rate against its target, not two counts side by side
    assert legends["Auto-correction rate (%)"] == {
        "target",
        "corrected of corrected plus reviewed, 7 days",
    }
    assert "exhausted" in legends["Booking retries by outcome / 1 h"]
    # The ratio of two increases over the same window: Prometheus' extrapolation cancels out.
    [mean] = prometheus.query(
        f'sum by (key) (increase(guard_breaker_recovery_seconds_sum{{key="{RECOVERED}"}}[24h]))'
        " / sum by (key) (increase(guard_breaker_recovery_seconds_count[24h]))"
    )
    assert float(mean["value"][1]) == pytest.approx(120, abs=1)
    [success] = prometheus.query(
        'sum(increase(guard_booking_retries_total{outcome="succeeded_after_retry"}[1h]))'
        ' / sum(increase(guard_booking_retries_total{outcome=~"succeeded_after_retry|exhausted"}'
        "[1h]))"
    )
    assert float(success["value"][1]) == 0, "six bookings failed after their retries"
