"""The Prometheus exporter behind `guard metrics`: a custom collector that reads PostgreSQL on
every scrape (one read-only transaction, a short statement_timeout, the queries pipelined into
one round trip). Names, labels and meaning: docs/metrics.md."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from guard.db.connection import connect
from guard.errors import GuardError, first_line

log = logging.getLogger("guard.metrics")

# 9187, the old default, is postgres_exporter's, which often runs on the same host. Prometheus'
# "Default port allocations" list has reserved every port of its exporter range 9100-9999, so a
# port outside it that no common service uses: see docs/metrics.md.
DEFAULT_PORT = 10187
BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "forced_closed", "disabled")
JOB_STATUSES = ("succeeded", "failed")
# Upper bounds (seconds) of the validation latency buckets: validate_booking targets < 1 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
QUANTILES = (0.5, 0.95, 0.99)

_EXISTS = """
SELECT
    to_regclass('guard.jobs') IS NOT NULL AND to_regclass('guard.job_runs') IS NOT NULL,
    to_regclass('guard.alert_deliveries') IS NOT NULL
"""
_ALERTS = """
SELECT coalesce(k.rule_id, '(unknown)'), a.check_id, a.severity, count(*)
FROM guard.alerts AS a LEFT JOIN guard.checks AS k ON a.check_id = k.id
WHERE a.status = 'open' GROUP BY k.rule_id, a.check_id, a.severity
UNION ALL
SELECT k.rule_id, k.id, k.severity, 0 FROM guard.checks AS k
WHERE k.enabled AND NOT EXISTS (
    SELECT FROM guard.alerts AS a WHERE a.check_id = k.id AND a.status = 'open'
)
"""
_REVIEW = """
SELECT r.reason, r.status, count(*),
    extract(epoch FROM now() - min(r.created_at) FILTER (WHERE r.status IN ('open', 'claimed')))
FROM guard.review_items AS r GROUP BY r.reason, r.status
"""
_BREAKER = """
SELECT s.key, s.state, greatest(s.generation, e.generation)
FROM guard.breaker_state AS s
LEFT JOIN (
    SELECT ev.key, max(ev.generation) AS generation FROM guard.breaker_events AS ev
    GROUP BY ev.key
) AS e ON e.key = s.key
"""
_LATENCY = """
WITH w AS (
    SELECT m.latency_ms / 1000.0 AS seconds FROM guard.validation_metrics AS m
    WHERE m.measured_at > now() - make_interval(secs => %(window)s)
)
SELECT
    (SELECT count(*) FROM w),
    (SELECT coalesce(sum(w.seconds), 0) FROM w),
    (SELECT percentile_cont(%(quantiles)s::float8[]) WITHIN GROUP (ORDER BY w.seconds) FROM w),
    (SELECT array_agg(n ORDER BY bound) FROM (
        SELECT b.bound, count(w.seconds) AS n
        FROM unnest(%(buckets)s::float8[]) AS b (bound)
        LEFT JOIN w ON w.seconds <= b.bound
        GROUP BY b.bound
    ) AS c)
"""
_CONSISTENCY = """
SELECT count(*), count(*) FILTER (WHERE EXISTS (
    SELECT FROM guard.alerts AS a
    WHERE a.status = 'open' AND a.entity_type = 'call' AND a.entity_id = c.id
))
FROM public.calls AS c WHERE c.created_at > now() - interval '24 hours'
"""
# Audit rows written before migration 0027 name the check that found the row; they count under
# its rule, so a rule has one series whatever wrote the row.
_CORRECTIONS = """
SELECT coalesce(k.rule_id, c.rule_id), count(*)
FROM guard.correction_audit AS c LEFT JOIN guard.checks AS k ON c.rule_id = k.id
GROUP BY 1
"""
_JOBS = """
SELECT j.name,
    (SELECT r.status FROM guard.job_runs AS r WHERE r.job_name = j.name
     ORDER BY r.started_at DESC, r.id DESC LIMIT 1),
    (SELECT extract(epoch FROM max(r.finished_at)) FROM guard.job_runs AS r
     WHERE r.job_name = j.name),
    (SELECT extract(epoch FROM max(r.finished_at)) FROM guard.job_runs AS r
     WHERE r.job_name = j.name AND r.status = 'succeeded')
FROM guard.jobs AS j WHERE j.enabled
"""
_DELIVERIES = """
SELECT d.channel, d.status, count(*) FROM guard.alert_deliveries AS d
GROUP BY d.channel, d.status
"""


class GuardCollector(Collector):
    """Queries PostgreSQL per scrape. A failed scrape yields guard_up 0 and nothing else (no
    stale values)."""

    def __init__(
        self,
        database_url: str | None,
        *,
        latency_window_s: float = 300.0,
        statement_timeout_ms: int = 2000,
    ) -> None:
        self.database_url = database_url
        self.latency_window_s = latency_window_s
        self.statement_timeout_ms = statement_timeout_ms
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.database_url, application_name="guard-metrics")
            self._conn.read_only = True
        return self._conn

    def _query(self) -> dict[str, Any]:
        conn = self._connection()
        with conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}")
            has_jobs, has_deliveries = conn.execute(_EXISTS).fetchone() or (False, False)
            params = {
                "window": self.latency_window_s,
                "quantiles": list(QUANTILES),
                "buckets": list(LATENCY_BUCKETS),
            }
            with conn.pipeline():
                cursors = {
                    "alerts": conn.execute(_ALERTS),
                    "review": conn.execute(_REVIEW),
                    "breaker": conn.execute(_BREAKER),
                    "latency": conn.execute(_LATENCY, params),
                    "consistency": conn.execute(_CONSISTENCY),
                    "corrections": conn.execute(_CORRECTIONS),
                }
                if has_jobs:
                    cursors["jobs"] = conn.execute(_JOBS)
                if has_deliveries:
                    cursors["deliveries"] = conn.execute(_DELIVERIES)
            return {name: cur.fetchall() for name, cur in cursors.items()}

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        with self._lock:
            try:
                data = self._query()
            except (psycopg.Error, GuardError) as error:
                log.warning("scrape failed: %s", first_line(error))
                if self._conn is not None and not self._conn.closed:
                    self._conn.close()
                self._conn = None
                data = None
        up = GaugeMetricFamily("guard_up", "1 when the last scrape could read PostgreSQL.")
        up.add_metric([], 0.0 if data is None else 1.0)
        yield up
        if data is not None:
            yield from self._families(data)
        duration = GaugeMetricFamily(
            "guard_scrape_duration_seconds", "Time this scrape spent reading PostgreSQL."
        )
        duration.add_metric([], time.monotonic() - started)
        yield duration

    def _families(self, data: dict[str, Any]) -> Iterator[Metric]:
        alerts = GaugeMetricFamily(
            "guard_alerts_open",
            "Open alerts by rule, check and severity (0 for an enabled check without any).",
            labels=["rule_id", "check_id", "severity"],
        )
        merged: dict[tuple[str, str, str], float] = {}
        for rule_id, check_id, severity, n in data["alerts"]:
            key = (rule_id, check_id, severity)
            merged[key] = merged.get(key, 0.0) + float(n)
        for (rule_id, check_id, severity), n in sorted(merged.items()):
            alerts.add_metric([rule_id, check_id, severity], n)
        yield alerts

        review = GaugeMetricFamily(
            "guard_review_items",
            "Review queue items by reason and status.",
            labels=["reason", "status"],
        )
        oldest = 0.0
        for reason, status, n, age in sorted(data["review"]):
            review.add_metric([reason, status], float(n))
            if age is not None:
                oldest = max(oldest, float(age))
        yield review
        age_family = GaugeMetricFamily(
            "guard_review_oldest_open_age_seconds",
            "Age of the oldest open or claimed review item (0 when the queue is empty).",
        )
        age_family.add_metric([], oldest)
        yield age_family

        state = GaugeMetricFamily(
            "guard_breaker_state",
            "Circuit breaker state per key as persisted in PostgreSQL, one-hot over states.",
            labels=["key", "state"],
        )
        transitions = CounterMetricFamily(
            "guard_breaker_transitions",
            "State transitions and manual actions per circuit (its generation; survives"
            " retention of guard.breaker_events).",
            labels=["key"],
        )
        for key, current, generation in sorted(data["breaker"]):
            for name in BREAKER_STATES:
                state.add_metric([key, name], 1.0 if name == current else 0.0)
            transitions.add_metric([key], float(generation or 0))
        yield state
        yield transitions

        yield from self._latency(data["latency"][0])

        calls, inconsistent = data["consistency"][0]
        ratio = GaugeMetricFamily(
            "guard_consistency_ratio",
            "Share of calls of the last 24 h without an open alert (1 when there were none).",
        )
        ratio.add_metric([], 1.0 if not calls else 1.0 - float(inconsistent) / float(calls))
        yield ratio

        corrections = CounterMetricFamily(
            "guard_corrections",
            "Automatic corrections by rule (guard.correction_audit).",
            labels=["rule_id"],
        )
        for rule_id, n in sorted(data["corrections"]):
            corrections.add_metric([rule_id], float(n))
        yield corrections

        if "jobs" in data:
            yield from self._jobs(data["jobs"])
        if "deliveries" in data:
            deliveries = GaugeMetricFamily(
                "guard_alert_deliveries",
                "Alert deliveries of `guard watch` by channel and status.",
                labels=["channel", "status"],
            )
            for channel, status, n in sorted(data["deliveries"]):
                deliveries.add_metric([channel, status], float(n))
            yield deliveries

    def _latency(self, row: tuple[Any, ...]) -> Iterator[Metric]:
        count, total, quantiles, buckets = row
        counts = [float(n) for n in (buckets or [0] * len(LATENCY_BUCKETS))]
        histogram = GaugeHistogramMetricFamily(
            "guard_validation_latency_window_seconds",
            f"validate_booking latency over the last {self.latency_window_s:g} s"
            " (a gauge histogram: buckets of a sliding window, use without rate()).",
            buckets=[
                *((_le(bound), n) for bound, n in zip(LATENCY_BUCKETS, counts, strict=True)),
                ("+Inf", float(count)),
            ],
            gsum_value=float(total),
        )
        yield histogram
        quantile = GaugeMetricFamily(
            "guard_validation_latency_percentile_seconds",
            "validate_booking latency percentiles (50, 95, 99)"
            f" over the last {self.latency_window_s:g} s"
            " (absent when there were no validations).",
            labels=["percentile"],
        )
        if count and quantiles:
            for q, value in zip(QUANTILES, quantiles, strict=True):
                quantile.add_metric([f"{q * 100:g}"], float(value))
        yield quantile

    @staticmethod
    def _jobs(rows: list[tuple[Any, ...]]) -> Iterator[Metric]:
        # `job_name`, not `job`: Prometheus owns `job` (and `instance`) as target labels and
        # would rename ours to `exported_job`, so rules and panels would show the scrape job.
        status = GaugeMetricFamily(
            "guard_job_last_run_status",
            "Status of each job's newest run, one-hot (all 0 when it never ran).",
            labels=["job_name", "status"],
        )
        last_run = GaugeMetricFamily(
            "guard_job_last_run_timestamp_seconds",
            "When each job's newest run finished (Unix time; absent when it never ran).",
            labels=["job_name"],
        )
        last_success = GaugeMetricFamily(
            "guard_job_last_success_timestamp_seconds",
            "When each job last succeeded (Unix time; absent when it never did).",
            labels=["job_name"],
        )
        for job, last_status, finished, succeeded in sorted(rows):
            for name in JOB_STATUSES:
                status.add_metric([job, name], 1.0 if name == last_status else 0.0)
            if finished is not None:
                last_run.add_metric([job], float(finished))
            if succeeded is not None:
                last_success.add_metric([job], float(succeeded))
        yield status
        yield last_run
        yield last_success


def _le(value: float) -> str:
    return repr(float(value))


def registry_for(collector: GuardCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
