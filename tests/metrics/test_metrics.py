"""`guard metrics`: real exposition from a database with data, checked by promtool; the HTTP
server; the example alert rules and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY, generate_latest

import guard.breaker  # noqa: F401  (registers the breaker counters in the default registry)
from guard import queries
from guard.cli import main
from guard.demo.embedded import free_port
from guard.ops.metrics import GuardCollector, registry_for
from guard.schema.migrate import Migrator
from tests.support.exposition import sample
from tests.support.pg_node import PgNode
from tests.support.postgres import Cluster

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = "/usr/bin/promtool"

DATA = """
INSERT INTO public.companies (id, name) VALUES (1, 'Praxis A');
INSERT INTO public.calls (id, company_id) SELECT g, 1 FROM generate_series(1, 10) AS g;
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity,
    message)
VALUES ('f1', 'booked_without_appointment', 1, 'call', 1, 'high', 'm'),
       ('f2', 'booked_without_appointment', 1, 'call', 2, 'high', 'm'),
       ('f3', 'cross_tenant_link', 1, 'call', 2, 'critical', 'm'),
       ('f4', 'retired_check', 1, 'call', 1, 'low', 'm');
INSERT INTO guard.review_items (company_id, call_id, reason, created_at)
VALUES (1, 3, 'validation_failure', now() - interval '1 hour'),
       (1, 4, 'other', now() - interval '10 minutes');
INSERT INTO guard.breaker_state (key, state, generation, changed_at)
VALUES ('calendar', 'open', 5, now()), ('crm', 'closed', 2, now());
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid,
    occurred_at)
VALUES ('calendar', 6, 'open', 'half_open', 'cooldown', 'h', 1, now());
INSERT INTO guard.validation_metrics (ok, latency_ms)
SELECT g % 10 <> 0, g / 100.0 FROM generate_series(1, 200) AS g;
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at)
VALUES (TRUE, 5000, now() - interval '1 day');
INSERT INTO guard.correction_audit (rule_id, entity_type, entity_id, reason)
SELECT 'I1_call_direction', 'call', g, 'test' FROM generate_series(1, 3) AS g;
-- written before migration 0027, under the check that found the row: counted under its rule
INSERT INTO guard.correction_audit (rule_id, entity_type, entity_id, reason)
VALUES ('call_without_direction', 'call', 4, 'test');
"""


@pytest.fixture
def exposition(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    result = CliRunner().invoke(main, ["--database-url", db_url, "metrics", "--once"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_values_from_the_database(exposition: str, db_url: str) -> None:
    text = exposition
    assert sample(text, "guard_up") == 1.0
    # the exposition sorts the labels by name
    open_series = 'guard_alerts_open{{check_id="{}",rule_id="{}",severity="{}"}}'
    bwa = open_series.format("booked_without_appointment", "I4_booked_outcome", "high")
    assert sample(text, bwa) == 2.0
    ctl = open_series.format("cross_tenant_link", "I5_tenant_link", "critical")
    assert sample(text, ctl) == 1
    cwd = open_series.format("call_without_direction", "I1_call_direction", "medium")
    assert sample(text, cwd) == 0
    retired = open_series.format("retired_check", "(unknown)", "low")
    assert sample(text, retired) == 1, "a check removed since: its alerts count, rule unknown"
    assert sample(text, 'guard_review_items{reason="validation_failure",status="open"}') == 1
    assert 3590 < sample(text, "guard_review_oldest_open_age_seconds") < 3700
    assert sample(text, 'guard_breaker_state{key="calendar",state="open"}') == 1
    assert sample(text, 'guard_breaker_state{key="calendar",state="closed"}') == 0
    assert sample(text, 'guard_breaker_transitions_total{key="calendar"}') == 6
    assert sample(text, 'guard_breaker_transitions_total{key="crm"}') == 2
    # 200 samples of 0.01 .. 2 ms in the window; the 5 s sample of yesterday is outside it
    assert sample(text, 'guard_validation_latency_window_seconds_bucket{le="0.001"}') == 100
    assert sample(text, 'guard_validation_latency_window_seconds_bucket{le="+Inf"}') == 200
    assert sample(text, "guard_validation_latency_window_seconds_gcount") == 200
    p95 = sample(text, 'guard_validation_latency_percentile_seconds{percentile="95"}')
    assert 0.0018 < p95 < 0.002
    assert sample(text, "guard_consistency_ratio") == pytest.approx(0.8)  # calls 1 and 2
    assert sample(text, 'guard_corrections_total{rule_id="I1_call_direction"}') == 4
    # the KPI targets the alert rules compare with, each in its setting's unit
    assert sample(text, 'guard_kpi_target{setting="target_review_queue_max"}') == 10
    assert sample(text, 'guard_kpi_target{setting="target_consistency_rate_pct"}') == 99.5
    assert sample(text, 'guard_kpi_target{setting="target_validation_p95_ms"}') == 100
    # and the KPIs' values, as guard.kpis shows them
    with psycopg.connect(db_url) as conn:
        kpis = conn.execute(
            "SELECT kpi, current_value FROM guard.kpis WHERE current_value IS NOT NULL"
        ).fetchall()
    assert {kpi for kpi, _ in kpis} >= {"consistency_rate", "validation_latency_p95"}
    for kpi, value in kpis:
        exported = sample(text, f'guard_kpi_value{{kpi="{kpi}"}}')
        if kpi in ("consistency_rate", "validation_latency_p95", "review_queue_size"):
            assert exported == pytest.approx(float(value)), kpi  # (the others move with now())


def _subplans_reading(node: dict[str, object], relation: str, inside: bool = False) -> int:
    inside = inside or "Subplan Name" in node
    found = int(inside and node.get("Relation Name") == relation)
    children = node.get("Plans", [])
    assert isinstance(children, list)
    return found + sum(_subplans_reading(child, relation, inside) for child in children)


def test_the_kpis_read_the_open_alerts_once_not_once_per_call(db_url: str) -> None:
    """The consistency KPI joins the open call alerts: a subplan per call of the day walked the
    open-alert index once per call and outran the exporter's statement_timeout at volume."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("EXPLAIN (FORMAT JSON) SELECT kpi, current_value FROM guard.kpis")
        plan = row.fetchone()
    assert plan is not None
    assert _subplans_reading(plan[0][0]["Plan"], "alerts") == 0, json.dumps(plan[0], indent=1)


def _relations(node: dict[str, Any]) -> set[str]:
    children = node.get("Plans", [])
    assert isinstance(children, list)
    found = {str(node["Relation Name"])} if "Relation Name" in node else set()
    return found.union(*(_relations(child) for child in children))


def test_the_kpis_series_leaves_the_days_calls_to_the_consistency_series(db_url: str) -> None:
    """A cold scrape counted the day's calls twice, for guard_consistency_ratio and for
    guard.kpis' consistency_rate: the kpis series now drops that branch of the view and the
    consistency series gives its value, by the view's expression."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {queries.METRIC_KPIS}").fetchone()
        assert row is not None
        kpi = conn.execute(
            "SELECT current_value FROM guard.kpis WHERE kpi = 'consistency_rate'"
        ).fetchone()
        consistency = conn.execute(queries.METRIC_CONSISTENCY).fetchall()
    read = _relations(row[0][0]["Plan"])
    assert "calls" not in read and "validation_metrics" in read, read
    assert kpi is not None
    # 10 calls, 2 of them with an open alert
    assert consistency == [
        ("guard_consistency_ratio", "", {}, 1 - 2 / 10),
        ("guard_kpi_value", "", {"kpi": "consistency_rate"}, pytest.approx(float(kpi[0]))),
    ]


def test_without_calls_the_consistency_kpi_is_absent(db_url: str) -> None:
    """As guard.kpis has no consistency_rate value without calls, the exporter has none either."""
    collector = GuardCollector(db_url)
    try:
        text = generate_latest(registry_for(collector)).decode()
    finally:
        collector.close()
    assert sample(text, "guard_consistency_ratio") == 1.0
    assert 'guard_kpi_value{kpi="review_queue_size"}' in text
    assert 'kpi="consistency_rate"' not in text


def test_promtool_check_metrics_is_clean(exposition: str) -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_promtool_rejects_a_bad_exposition() -> None:
    """The check above can fail: promtool flags a counter without _total."""
    bad = "# HELP guard_x Things.\n# TYPE guard_x counter\nguard_x 1\n"
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=bad, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_alert_rules_pass_promtool() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(ROOT / "docs/prometheus/alert-rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


_HISTOGRAM = ("bucket", "sum", "count")


def test_dashboard_and_rules_only_use_exported_metrics(exposition: str) -> None:
    # guard metrics, plus the breaker counters an application process serves
    application = generate_latest(REGISTRY).decode()
    exported = set(re.findall(r"^# TYPE (\S+) (\S+)", exposition + application, re.MULTILINE))
    names = {name for name, _ in exported}
    names |= {f"{n}_total" for n, t in exported if t == "counter"}
    names |= {f"{n}_{part}" for n, t in exported if t == "histogram" for part in _HISTOGRAM}
    dashboard = json.loads((ROOT / "docs/grafana/booking-guard.json").read_text())
    targets = [(p["datasource"]["type"], t) for p in dashboard["panels"] for t in p["targets"]]
    # A panel reads Prometheus (checked here) or, as the reporting login, the reporting views
    # (tests/metrics/test_dashboard_sql.py): nothing else goes unchecked.
    assert {kind for kind, _ in targets} <= {"prometheus", "grafana-postgresql-datasource"}
    exprs = [t["expr"] for kind, t in targets if kind == "prometheus"]
    assert exprs, "a dashboard without queries"
    rules_text = (ROOT / "docs/prometheus/alert-rules.yml").read_text()
    rules = "\n".join(line for line in rules_text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\bguard_[a-z_]+", " ".join(exprs) + rules))
    assert used - names == set(), f"not exported: {used - names}"


def test_a_scrape_without_database_says_guard_up_0(pg_cluster: Cluster) -> None:
    collector = GuardCollector(pg_cluster.url("no_such_database"))

    text = generate_latest(registry_for(collector)).decode()
    assert sample(text, "guard_up") == 0
    assert "guard_alerts_open" not in text, "no stale or invented values"


def test_works_without_the_jobs_tables(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        has_jobs = conn.execute("SELECT to_regclass('guard.job_runs') IS NOT NULL").fetchone()
        if has_jobs and has_jobs[0]:
            conn.execute(
                "INSERT INTO guard.job_runs (job_name, started_at, finished_at, status,"
                " duration_ms) SELECT name, now(), now(), 'succeeded', 1 FROM guard.jobs LIMIT 1"
            )
    text = CliRunner().invoke(main, ["--database-url", db_url, "metrics", "--once"]).stdout
    assert sample(text, "guard_up") == 1
    if has_jobs and has_jobs[0]:
        assert re.search(
            r'^guard_job_last_run_status\{job_name="\w+",status="succeeded"\} 1.0$',
            text,
            re.MULTILINE,
        )
        assert "guard_job_last_success_timestamp_seconds{" in text
    else:
        assert "guard_job_" not in text


def test_http_server_serves_metrics(db_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "--database-url", db_url, "metrics", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"serving (http://\S+/metrics)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1), timeout=10) as response:
            body = response.read().decode()
        assert sample(body, "guard_up") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_a_stop_during_a_blocked_warm_up_exits_at_once(db_url: str) -> None:
    """SIGTERM while the warm-up waits on a lock, with a statement timeout of a minute: the
    exporter cancels the warm-up's query and exits within seconds, leaving no query behind."""
    with psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE guard.review_items IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "guard.cli", "--database-url", db_url, "metrics"),
                *("--port", "0", "--statement-timeout-ms", "60000"),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            assert "serving http://" in proc.stderr.readline()
            with psycopg.connect(db_url, autocommit=True) as watcher:
                _wait_for(
                    lambda: _metrics_backends(watcher, waiting_on_lock=True) == 1,
                    "the warm-up never waited on the lock",
                )
                proc.terminate()
                started = time.monotonic()
                proc.wait(timeout=30)
                took = time.monotonic() - started
                assert proc.returncode == 0
                assert took < 5, f"the exporter took {took:.1f} s to stop"
                _wait_for(
                    lambda: _metrics_backends(watcher, waiting_on_lock=False) == 0,
                    "the warm-up's query outlived the exporter",
                )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _metrics_backends(conn: psycopg.Connection[tuple[object, ...]], waiting_on_lock: bool) -> int:
    lock_only = "AND wait_event_type = 'Lock'" if waiting_on_lock else ""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        f" WHERE application_name = 'guard-metrics' AND state = 'active' {lock_only}"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _wait_for(condition: Callable[[], bool], failure: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def test_no_label_of_ours_is_one_prometheus_owns(exposition: str) -> None:
    """Prometheus renames a scraped `job` or `instance` label to `exported_*`."""
    labels = set(re.findall(r"[{,]([a-z_]+)=", exposition))
    assert "job_name" in labels or "guard_job_" not in exposition
    assert labels & {"job", "instance"} == set(), labels


def test_once_with_postgresql_unreachable_writes_guard_up_0() -> None:
    nobody_listens = f"postgresql://postgres@127.0.0.1:{free_port()}/guard"
    result = CliRunner().invoke(main, ["--database-url", nobody_listens, "metrics", "--once"])
    assert result.exit_code == 1
    assert sample(result.stdout, "guard_up") == 0
    assert "# TYPE guard_up gauge" in result.stdout
    assert "guard_alerts_open" not in result.stdout
    assert "guard: error:" in result.stderr and "guard_up 0" in result.stderr


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=15) as response:
        body: str = response.read().decode()
        return body


def test_serving_starts_with_postgresql_down_and_recovers() -> None:
    """PostgreSQL is down when `guard metrics --port` starts: it serves guard_up 0 instead of
    exiting, and guard_up 1 once the server is back."""
    node = PgNode.create()
    proc: subprocess.Popen[str] | None = None
    try:
        node.start()
        with Migrator(node.url()) as migrator:
            migrator.apply()
        node.stop()
        command = [sys.executable, "-m", "guard.cli", "--database-url", node.url()]
        proc = subprocess.Popen(
            [*command, "metrics", "--port", "0"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"serving (http://\S+/metrics)", line)
        assert match, line
        down = _scrape(match.group(1))
        assert sample(down, "guard_up") == 0
        assert "guard_alerts_open" not in down
        assert proc.poll() is None, "the exporter exited while PostgreSQL was down"
        node.start()
        up = _scrape(match.group(1))
        assert sample(up, "guard_up") == 1
        assert "guard_alerts_open{" in up
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        node.destroy()


def _scrape_once(collector: GuardCollector) -> str:
    return generate_latest(registry_for(collector)).decode()


def test_a_locked_table_makes_its_series_stale_and_leaves_the_others(db_url: str) -> None:
    """A session holds guard.breaker_state locked (as a migration would): the breaker series
    times out, keeps its last values marked stale, and every other series is still served."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    collector = GuardCollector(db_url, statement_timeout_ms=300, cache_interval_s=0)
    fresh = GuardCollector(db_url, statement_timeout_ms=300, cache_interval_s=0)
    try:
        before = _scrape_once(collector)
        assert sample(before, 'guard_series_stale{series="breaker"}') == 0
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE guard.breaker_state IN ACCESS EXCLUSIVE MODE")
            during = _scrape_once(collector)
            never_read = _scrape_once(fresh)
        after = _scrape_once(collector)
    finally:
        collector.close()
        fresh.close()

    assert sample(during, "guard_up") == 1, "one series timed out: PostgreSQL is still readable"
    bwa = 'guard_alerts_open{check_id="booked_without_appointment",rule_id="I4_booked_outcome",'
    assert sample(during, bwa + 'severity="high"}') == 2
    assert sample(during, "guard_consistency_ratio") == pytest.approx(0.8)
    assert sample(during, 'guard_series_stale{series="breaker"}') == 1
    others = re.findall(r'^guard_series_stale\{series="(\w+)"\} 0\.0$', during, re.MULTILINE)
    assert {"alerts", "latency", "review", "consistency", "corrections"} <= set(others)
    # the last values read, kept
    assert sample(during, 'guard_breaker_state{key="calendar",state="open"}') == 1
    assert sample(during, 'guard_breaker_transitions_total{key="calendar"}') == 6
    # a collector that never read the series has nothing to keep: absent, and said stale
    assert sample(never_read, "guard_up") == 1
    assert sample(never_read, 'guard_series_stale{series="breaker"}') == 1
    assert "guard_breaker_state{" not in never_read
    assert sample(never_read, "guard_consistency_ratio") == pytest.approx(0.8)
    # the lock released, the next scrape reads the series again
    assert sample(after, 'guard_series_stale{series="breaker"}') == 0
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=during, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_a_kpis_series_never_read_has_no_consistency_kpi_either(db_url: str) -> None:
    """consistency_rate comes with the consistency series' counts but belongs to the kpis
    series: while that series was never read (a table it reads is locked), no KPI is served,
    that one included, though the consistency counts are."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    fresh = GuardCollector(db_url, statement_timeout_ms=300, cache_interval_s=0)
    try:
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE guard.validation_metrics IN ACCESS EXCLUSIVE MODE")
            never_read = _scrape_once(fresh)
        # the lock released: the kpis series is read in the background, served once read
        deadline = time.monotonic() + 30
        while 'guard_kpi_value{kpi="review_queue_size"}' not in (after := _scrape_once(fresh)):
            assert time.monotonic() < deadline, "the kpis series was never read"
            time.sleep(0.1)
    finally:
        fresh.close()
    assert sample(never_read, 'guard_series_stale{series="kpis"}') == 1
    assert sample(never_read, "guard_consistency_ratio") == pytest.approx(0.8)
    assert "guard_kpi_value{" not in never_read
    assert sample(after, 'guard_kpi_value{kpi="consistency_rate"}') == pytest.approx(80.0)


def test_a_cached_series_that_times_out_is_stale_and_guard_up_stays_1(db_url: str) -> None:
    """public.calls locked by another session during the first reading of the consistency
    series (cached): it has no value to keep, so it is absent and said stale; the others are
    served and guard_up says PostgreSQL is readable."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    collector = GuardCollector(db_url, statement_timeout_ms=300)
    try:
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE")
            text = _scrape_once(collector)
    finally:
        collector.close()
    assert sample(text, "guard_up") == 1
    assert sample(text, 'guard_corrections_total{rule_id="I1_call_direction"}') == 4
    assert sample(text, 'guard_series_stale{series="alerts"}') == 0
    assert sample(text, 'guard_series_stale{series="consistency"}') == 1
    assert "guard_consistency_ratio" not in text
    assert 'guard_series_age_seconds{series="consistency"}' not in text


def test_a_cached_series_is_read_once_per_interval(db_url: str) -> None:
    """A call with an open alert arrives between two scrapes: the live alert count sees it at
    once, the cached consistency ratio only after the cache interval."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    interval = 3.0
    collector = GuardCollector(db_url, cache_interval_s=interval)
    ratio = "guard_consistency_ratio"
    series = 'guard_alerts_open{check_id="cross_tenant_link",rule_id="I5_tenant_link",'
    critical = series + 'severity="critical"}'
    try:
        first = _scrape_once(collector)
        read_at = time.monotonic()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO public.calls (id, company_id) VALUES (11, 1);"
                " INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type,"
                " entity_id, severity, message)"
                " VALUES ('f5', 'cross_tenant_link', 1, 'call', 11, 'critical', 'm')"
            )
        within = _scrape_once(collector)
        assert time.monotonic() - read_at < interval, "the second scrape came too late"
        time.sleep(max(0.0, interval - (time.monotonic() - read_at)) + 0.1)
        due = _scrape_once(collector)  # starts the refresh in the background
        after = _scrape_until(collector, lambda text: sample(text, ratio) != 0.8)
    finally:
        collector.close()
    assert sample(first, ratio) == pytest.approx(0.8)  # 2 of 10 calls
    assert sample(within, critical) == 2, "the live series read the new alert"
    assert sample(within, ratio) == pytest.approx(0.8), "the cached series was read again"
    assert sample(within, 'guard_series_age_seconds{series="consistency"}') > 0
    assert sample(due, 'guard_series_age_seconds{series="consistency"}') >= interval
    assert sample(after, ratio) == pytest.approx(1 - 3 / 11)
    assert sample(after, 'guard_series_age_seconds{series="consistency"}') < interval


def _scrape_until(collector: GuardCollector, done: Callable[[str], bool]) -> str:
    """Scrape every 50 ms until `done` holds (at most 10 s): what a background refresh stored."""
    deadline = time.monotonic() + 10
    while True:
        text = _scrape_once(collector)
        if done(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.mark.serial
def test_a_scrape_never_waits_for_a_cached_series(db_url: str) -> None:
    """Once read, a cached series is refreshed in the background: with public.calls locked by
    another session (as a migration would), a due scrape serves the last consistency ratio at
    once instead of waiting out the statement timeout; the refresh then times out and the ratio
    is marked stale, kept; once the lock is gone a later scrape serves the new value."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    timeout_ms = 2000
    collector = GuardCollector(db_url, statement_timeout_ms=timeout_ms, cache_interval_s=0)
    ratio = "guard_consistency_ratio"
    stale = 'guard_series_stale{series="consistency"}'
    try:
        first = _scrape_once(collector)
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE")
            during = _scrape_once(collector)
            timed_out = _scrape_until(collector, lambda text: sample(text, stale) == 1)
            locker.execute("INSERT INTO public.calls (id, company_id) VALUES (11, 1)")
        after = _scrape_until(collector, lambda text: sample(text, ratio) != 0.8)
    finally:
        collector.close()
    assert sample(first, ratio) == pytest.approx(0.8)
    assert sample(during, "guard_scrape_duration_seconds") < timeout_ms / 1000 / 2
    assert sample(during, ratio) == pytest.approx(0.8)
    assert sample(during, stale) == 0
    assert sample(timed_out, stale) == 1, "the refresh timed out behind the lock"
    assert sample(timed_out, ratio) == pytest.approx(0.8), "the last value is kept"
    assert sample(after, stale) == 0
    assert sample(after, ratio) == pytest.approx(1 - 2 / 11)


@pytest.mark.serial
def test_a_warmed_up_exporter_serves_its_first_scrape_without_reading_history(
    db_url: str,
) -> None:
    """A serving exporter reads the cached series as it starts (start_warm_up): its first scrape
    serves them at once even with every table they read locked by another session, where a
    collector without a warm-up waits out the statement timeout and has nothing to serve."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    timeout_ms = 2000
    warmed = GuardCollector(db_url, statement_timeout_ms=timeout_ms)
    cold = GuardCollector(db_url, statement_timeout_ms=timeout_ms)
    cached_tables = "public.calls, guard.review_items, guard.correction_audit"
    try:
        warmed.start_warm_up()
        assert warmed._refresher is not None
        warmed._refresher.join(timeout=10)
        with psycopg.connect(db_url) as locker:
            locker.execute(f"LOCK TABLE {cached_tables} IN ACCESS EXCLUSIVE MODE")
            first = _scrape_once(warmed)
            without = _scrape_once(cold)
    finally:
        warmed.close()
        cold.close()
    assert sample(first, "guard_scrape_duration_seconds") < timeout_ms / 1000 / 2
    assert sample(first, "guard_consistency_ratio") == pytest.approx(0.8)
    assert sample(first, 'guard_corrections_total{rule_id="I1_call_direction"}') == 4
    assert sample(first, 'guard_review_items{reason="other",status="open"}') == 1
    for series in ("consistency", "corrections", "review"):
        assert sample(first, f'guard_series_stale{{series="{series}"}}') == 0
    # without the warm-up the first scrape reads history itself, and waits on the lock
    assert sample(without, "guard_scrape_duration_seconds") >= timeout_ms / 1000
    assert sample(without, 'guard_series_stale{series="consistency"}') == 1


def test_a_warm_up_that_cannot_connect_leaves_the_first_scrape_to_read(db_url: str) -> None:
    """The exporter starts before PostgreSQL answers: its warm-up fails, and the first scrape
    once PostgreSQL is reachable reads the cached series itself, as one without a warm-up."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
    collector = GuardCollector(db_url.rsplit("/", 1)[0] + "/missing_database")
    try:
        collector.start_warm_up()
        assert collector._refresher is not None
        collector._refresher.join(timeout=10)
        collector.database_url = db_url  # PostgreSQL (this database) answers now
        first = _scrape_once(collector)
    finally:
        collector.close()
    assert sample(first, "guard_up") == 1
    assert sample(first, "guard_consistency_ratio") == pytest.approx(0.8)
    assert sample(first, 'guard_series_stale{series="consistency"}') == 0
