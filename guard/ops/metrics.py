"""The Prometheus exporter behind `guard metrics` (docs/metrics.md): one query per series, each
in a read-only transaction of its own with settings local to it, so a series that fails or times
out leaves the others in place and nothing outlives it behind a transaction pooler."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from guard import queries
from guard.connection import connect
from guard.errors import GuardError, first_line, server_address
from guard.ops.login_limits import LoginLimit, within_limits

log = logging.getLogger("guard.metrics")

# 9187, the old default, is postgres_exporter's, which often runs on the same host. Prometheus'
# "Default port allocations" list has reserved every port of its exporter range 9100-9999, so a
# port outside it that no common service uses: see docs/metrics.md.
DEFAULT_PORT = 10187
DEFAULT_CACHE_INTERVAL_S = 60.0
PROGRAM = "guard metrics"
# The families of the exposition in its order, by name: the series whose rows fill each, its
# type and its help (`{window}`: the latency window).
FAMILIES: dict[str, tuple[str, str, str]] = {
    "guard_alerts_open": (
        "alerts",
        "gauge",
        "Open alerts by rule, check and severity (0 for an enabled check without any).",
    ),
    "guard_breaker_state": (
        "breaker",
        "gauge",
        "Circuit breaker state per key as persisted in PostgreSQL, one-hot over states.",
    ),
    "guard_breaker_transitions": (
        "breaker",
        "counter",
        "State transitions and manual actions per circuit (its generation; survives"
        " retention of guard.breaker_events).",
    ),
    "guard_validation_latency_window_seconds": (
        "latency",
        "gaugehistogram",
        "validate_booking latency over the last {window} s"
        " (a gauge histogram: buckets of a sliding window, use without rate()).",
    ),
    "guard_validation_latency_percentile_seconds": (
        "latency",
        "gauge",
        "validate_booking latency percentiles (50, 95, 99) over the last {window} s"
        " (absent when there were no validations).",
    ),
    "guard_job_last_run_status": (
        "jobs",
        "gauge",
        "Status of each job's newest run, one-hot (all 0 when it never ran).",
    ),
    "guard_job_last_run_timestamp_seconds": (
        "jobs",
        "gauge",
        "When each job's newest run finished (Unix time; absent when it never ran).",
    ),
    "guard_job_last_success_timestamp_seconds": (
        "jobs",
        "gauge",
        "When each job last succeeded (Unix time; absent when it never did).",
    ),
    "guard_kpi_target": (
        "targets",
        "gauge",
        "A KPI target from guard.settings, by its setting (target_review_queue_max, ...).",
    ),
    "guard_review_items": ("review", "gauge", "Review queue items by reason and status."),
    "guard_review_oldest_open_age_seconds": (
        "review",
        "gauge",
        "Age of the oldest open or claimed review item (0 when the queue is empty).",
    ),
    "guard_consistency_ratio": (
        "consistency",
        "gauge",
        "Share of calls of the last 24 h without an open alert (1 when there were none).",
    ),
    "guard_corrections": (
        "corrections",
        "counter",
        "Automatic corrections by rule (guard.correction_audit).",
    ),
    "guard_alert_deliveries": (
        "deliveries",
        "gauge",
        "Alert deliveries of `guard watch` by channel and status.",
    ),
    # The cumulative counters (guard.metric_totals plus the rows after its watermark): they
    # survive retention. Outcomes and results always have a series (0 before the first).
    "guard_bookings": ("counters", "counter", "Booking attempts settled, by outcome."),
    "guard_validations": (
        "counters",
        "counter",
        "validate_booking calls, by result (passed, failed).",
    ),
    "guard_validation_failures": ("counters", "counter", "Failed validations, by reason code."),
    "guard_alerts_opened": (
        "counters",
        "counter",
        "Alerts opened (inconsistencies detected), by rule and check.",
    ),
    "guard_booking_retries": (
        "counters",
        "counter",
        "Booking attempts the booking path settled, by what retrying did (not_retried,"
        " succeeded_after_retry, exhausted); the calendar asked at least once.",
    ),
    "guard_booking_duration_seconds": (
        "counters",
        "histogram",
        "Seconds from journaling a booking attempt to settling it (the calendar's answer with"
        " its retries), attempts the booking path settled, by outcome.",
    ),
    "guard_breaker_recovery_seconds": (
        "counters",
        "histogram",
        "Seconds from a circuit opening (closed -> open) to its closing after successful"
        " probes (half_open -> closed), by circuit.",
    ),
    "guard_kpi_value": (
        "kpis",
        "gauge",
        "A KPI's current value (guard.kpis), in its unit; absent while it has no sample.",
    ),
}
# Read as the time of the oldest open item: a cached series' age moves between its readings.
OLDEST_REVIEW = "guard_review_oldest_open_age_seconds"


@dataclass(frozen=True)
class Series:
    """One query of a scrape, whose rows fill FAMILIES: (family, sample suffix, labels, value),
    in the order exposed."""

    name: str
    sql: str
    cached: bool = False
    requires: str | None = None
    windowed: bool = False
    prelude: str | None = None


SERIES = (
    Series("alerts", queries.METRIC_ALERTS),
    Series("breaker", queries.METRIC_BREAKER),
    Series("latency", queries.METRIC_LATENCY, windowed=True),
    Series("jobs", queries.METRIC_JOBS, requires="jobs"),
    Series("targets", queries.METRIC_TARGETS),
    Series("review", queries.METRIC_REVIEW, cached=True),
    Series("consistency", queries.METRIC_CONSISTENCY, cached=True),
    Series("corrections", queries.METRIC_CORRECTIONS, cached=True),
    Series("deliveries", queries.METRIC_DELIVERIES, cached=True, requires="deliveries"),
    Series(
        "counters",
        queries.METRIC_COUNTERS,
        cached=True,
        requires="counters",
        prelude=queries.METRIC_WATERMARK,
    ),
    Series("kpis", queries.METRIC_KPIS, cached=True),
)


@dataclass
class Reading:
    """What a series last read: its rows (None until one query succeeded), when (monotonic),
    when it was last tried, whether that try failed, and how long it took."""

    rows: list[tuple[Any, ...]] | None = None
    read_at: float | None = None
    tried_at: float | None = None
    failed: bool = False
    seconds: float = 0.0


class GuardCollector(Collector):
    """Queries PostgreSQL per scrape, one series at a time."""

    def __init__(
        self,
        database_url: str | None,
        *,
        latency_window_s: float = 300.0,
        statement_timeout_ms: int = 2000,
        cache_interval_s: float = DEFAULT_CACHE_INTERVAL_S,
    ) -> None:
        self.database_url = database_url
        self.latency_window_s = latency_window_s
        self.statement_timeout_ms = statement_timeout_ms
        self.cache_interval_s = cache_interval_s
        self.readings: dict[str, Reading] = {}
        self._conn: psycopg.Connection[Any] | None = None
        # Held by a scrape for its whole reading, and by the refresher only to store a result.
        self._lock = threading.Lock()
        # Guards in_recovery and standby, which the refresher's probe sets too.
        self._state = threading.Lock()
        self._refresher: threading.Thread | None = None
        # Set by close(): the refresher reads no further series, and its running query is
        # cancelled, so that a stopping exporter exits at once instead of after a warm-up.
        self._closing = threading.Event()
        self._refresher_conn: psycopg.Connection[Any] | None = None
        # What the last scrape's probe found: None when it reached no server, else whether the
        # server is a hot standby (guard_in_recovery), and then which one (host:port/dbname).
        self.in_recovery: bool | None = None
        self.standby: str | None = None
        # The last series the login's statement_timeout or lock_timeout kept from being read.
        self.login_limit: LoginLimit | None = None

    def close(self) -> None:
        self._closing.set()
        refresher = self._refresher
        if refresher is not None:
            with self._state:
                running = self._refresher_conn
            if running is not None:
                with contextlib.suppress(psycopg.Error):
                    running.cancel_safe(timeout=2.0)
            # A cancel that did not reach the server still ends within the statement timeout.
            refresher.join(timeout=self.statement_timeout_ms / 1000 + 5)
        with self._lock:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._open()
        return self._conn

    def _open(self) -> psycopg.Connection[Any]:
        """A connection that changes nothing in its session: every query of a scrape runs in a
        transaction of its own (`_in_transaction`), read-only (BEGIN READ ONLY) and with its
        settings local to it, so a failed one aborts nothing else and nothing outlives it."""
        conn = connect(self.database_url, autocommit=False, application_name="guard-metrics")
        conn.read_only = True
        # Never prepared: a prepared statement lives in the server session, which PgBouncer in
        # transaction mode hands to other clients (and gives us another one next time).
        conn.prepare_threshold = None
        return conn

    def _in_transaction(
        self,
        conn: psycopg.Connection[Any],
        sql: str,
        params: dict[str, Any] | None = None,
        prelude: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """One query (after its prelude, whose value is passed as `since`) in a transaction of
        its own, read-only, with the scrape's settings local to it; committed, or rolled back
        when it fails."""
        timeout = int(self.statement_timeout_ms)
        with conn.transaction():
            [(logins, *_)] = conn.execute(
                queries.METRIC_TRANSACTION_SETTINGS, {"timeout": timeout}
            ).fetchall()
            try:
                if prelude is not None:
                    first = conn.execute(prelude).fetchone()
                    assert first is not None
                    # Not prepared (never, see _open): a prepared statement may switch to a
                    # generic plan that does not know how recent `since` is.
                    return conn.execute(sql, {"since": first[0]}, prepare=False).fetchall()
                return conn.execute(sql, params).fetchall()
            except psycopg.errors.QueryCanceled as error:
                if logins or self._closing.is_set():
                    raise  # the login's statement_timeout: within_limits names it
                raise GuardError(
                    f"it takes longer than --statement-timeout-ms = {timeout}"
                ) from error

    def _applicable(
        self, conn: psycopg.Connection[Any], what: str
    ) -> tuple[list[Series], float] | None:
        """The series this database has the tables for, and the server's time."""
        [probe] = self._in_transaction(conn, queries.METRIC_PROBE)
        in_recovery, has_schema, has_jobs, has_deliveries, has_counters, server_now = probe
        if in_recovery:
            where = server_address(conn.info)
            with self._state:
                self.in_recovery, self.standby = True, where
            log.warning(
                "%s: %s is a read-only standby (in recovery): guard_up 0; point guard metrics at"
                " the primary (a multi-host URL with target_session_attrs=read-write, docs/ha.md)",
                what,
                where,
            )
            return None
        with self._state:
            self.in_recovery, self.standby = False, None
        if not has_schema:
            log.warning("%s failed: no Booking Guard schema (guard.alerts) in this database", what)
            return None
        flags = {"jobs": has_jobs, "deliveries": has_deliveries, "counters": has_counters}
        series = [s for s in SERIES if s.requires is None or flags[s.requires]]
        return series, float(server_now)

    def start_warm_up(self) -> None:
        """Read the cached series once, in the background, as a serving exporter starts: its first
        scrape then serves them instead of reading history itself (about half a second at a million
        calls a day)."""
        with self._lock:
            if self._refreshing():
                return
            now = time.monotonic()
            cached = [one for one in SERIES if one.cached]
            for one in cached:
                self.readings.setdefault(one.name, Reading()).tried_at = now
            self._start_refresher(cached, warm_up=True)

    def _read(self) -> tuple[list[Series], float] | None:
        """Run what is due; the applicable series and the server's time, None when unreadable."""
        try:
            conn = self._connection()
            applicable = self._applicable(conn, "scrape")
        except (psycopg.Error, GuardError) as error:
            log.warning("scrape failed: %s", first_line(error))
            with self._state:
                self.in_recovery, self.standby = None, None
            self._drop_connection()
            return None
        if applicable is None:
            if self.in_recovery:  # the next scrape connects again: the URL may reach a primary
                self._drop_connection()
            return None
        series, server_now = applicable
        in_background: list[Series] = []
        for one in series:
            reading = self.readings.setdefault(one.name, Reading())
            now = time.monotonic()
            if one.cached and reading.tried_at is not None:
                # Read before (or being read by the warm-up): due again after the cache
                # interval, then in the background, so that no scrape waits for a query that
                # reads history (nearly a second for a day of a million calls); this scrape
                # serves the last values and their age.
                if now - reading.tried_at >= self.cache_interval_s and not self._refreshing():
                    reading.tried_at = now
                    in_background.append(one)
                continue
            reading.tried_at = now
            try:
                rows = self._query(conn, one)
            except (psycopg.Error, GuardError) as error:
                if conn.broken or conn.closed:
                    log.warning("scrape failed: %s", first_line(error))
                    self._drop_connection()
                    return None
                self._failed(one, error)
                reading.failed = True
                continue
            self._store(reading, rows, now)
        if in_background:
            self._start_refresher(in_background, warm_up=False)
        return series, server_now

    def _refreshing(self) -> bool:
        return self._refresher is not None and self._refresher.is_alive()

    def _start_refresher(self, series: list[Series], warm_up: bool) -> None:
        self._refresher = threading.Thread(
            target=self._refresh,
            args=(series, warm_up),
            name=f"guard-metrics-{'warm-up' if warm_up else 'refresh'}",
            daemon=True,
        )
        self._refresher.start()

    @staticmethod
    def _store(reading: Reading, rows: list[tuple[Any, ...]], started: float) -> None:
        reading.rows, reading.read_at, reading.failed = rows, time.monotonic(), False
        reading.seconds = reading.read_at - started

    def _refresh(self, series: list[Series], warm_up: bool = False) -> None:
        """Read cached series on a connection of its own, storing each result as it comes."""
        what = "warm-up" if warm_up else "refresh"
        unread = {one.name for one in series}
        try:
            with self._open() as conn:
                with self._state:
                    self._refresher_conn = conn
                applicable = self._applicable(conn, what)
                for one in series:
                    if self._closing.is_set():
                        break
                    if applicable is None or one not in applicable[0]:
                        continue
                    started = time.monotonic()
                    try:
                        rows = self._query(conn, one)
                    except (psycopg.Error, GuardError) as error:
                        if self._closing.is_set():
                            break
                        self._failed(one, error)
                        if conn.broken or conn.closed:
                            break
                        continue
                    with self._lock:
                        self._store(self.readings[one.name], rows, started)
                    unread.discard(one.name)
        except (psycopg.Error, GuardError) as error:
            if not self._closing.is_set():
                log.warning(
                    "%s of %s failed: %s", what, ", ".join(sorted(unread)), first_line(error)
                )
        finally:
            with self._state:
                self._refresher_conn = None
        with self._lock:
            for name in unread:
                if warm_up:
                    self.readings[name].tried_at = None
                else:
                    self.readings[name].failed = True

    def _query(self, conn: psycopg.Connection[Any], one: Series) -> list[tuple[Any, ...]]:
        """One series within the login's limits: a lock wait its lock_timeout ends is tried
        again for as long as the query may take (--statement-timeout-ms); a query its
        statement_timeout cuts, or a lock held longer, is a LoginLimit naming the setting."""
        params = {"window": self.latency_window_s} if one.windowed else None
        try:
            return within_limits(
                conn,
                None,
                lambda _: self._in_transaction(conn, one.sql, params, prelude=one.prelude),
                lambda _: f"reading series {one.name}",
                PROGRAM,
                stop=self._closing.is_set,
                lock_deadline_s=self.statement_timeout_ms / 1000,
            )
        finally:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()  # the LoginLimit's look-up of the setting: no idle transaction

    def _failed(self, one: Series, error: Exception) -> None:
        if isinstance(error, LoginLimit):
            self.login_limit = error
            log.warning("%s; last values kept", str(error).removeprefix(f"{PROGRAM}: "))
        else:
            log.warning("series %s failed, last value kept: %s", one.name, first_line(error))

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        with self._lock:  # the refresher stores results under it too: one consistent view
            read = self._read()
            series = [] if read is None else read[0]
            rows = {one.name: self.readings[one.name].rows for one in series}
            data = {name: r for name, r in rows.items() if r is not None}
            freshness = list(self._freshness(series, started))
        yield GaugeMetricFamily(
            "guard_up",
            "1 when the last scrape could read PostgreSQL (a primary, not a standby).",
            value=0.0 if read is None else 1.0,
        )
        with self._state:
            in_recovery = self.in_recovery
        if in_recovery is not None:
            yield GaugeMetricFamily(
                "guard_in_recovery",
                "1 when the server reached is a hot standby (pg_is_in_recovery()): guard_up is 0"
                " there; absent when no server was reached.",
                value=1.0 if in_recovery else 0.0,
            )
        if read is not None:
            yield from self._families(data, read[1])
            yield from freshness
        yield GaugeMetricFamily(
            "guard_scrape_duration_seconds",
            "Time this scrape spent reading PostgreSQL.",
            value=time.monotonic() - started,
        )

    def _freshness(self, series: list[Series], now: float) -> Iterator[Metric]:
        stale = GaugeMetricFamily(
            "guard_series_stale",
            "1 when the last query of a series failed: its values (if any) are from an earlier"
            " one.",
            labels=["series"],
        )
        age = GaugeMetricFamily(
            "guard_series_age_seconds",
            "Age of the values served for a series (cached series: up to the cache interval and"
            " the time their refresh takes).",
            labels=["series"],
        )
        for one in series:
            reading = self.readings[one.name]
            stale.add_metric([one.name], 1.0 if reading.failed else 0.0)
            if reading.read_at is not None:
                age.add_metric([one.name], max(0.0, now - reading.read_at))
        yield stale
        yield age

    def _families(self, data: dict[str, Any], server_now: float) -> Iterator[Metric]:
        """The families of the series that have rows (a series never read yet has none)."""
        if "consistency" in data and "kpis" in data:
            # guard.kpis' consistency_rate comes with the consistency counts (METRIC_KPIS
            # leaves it out rather than count the day's calls twice); absent without calls
            rate = [row for row in data["consistency"] if row[0] == "guard_kpi_value"]
            data = {**data, "kpis": sorted([*data["kpis"], *rate], key=lambda row: row[2]["kpi"])}
        window = f"{self.latency_window_s:g}"
        for one in SERIES:
            if one.name not in data:
                continue
            families = {
                name: Metric(name, documentation.format(window=window), kind)
                for name, (series, kind, documentation) in FAMILIES.items()
                if series == one.name
            }
            for family, sample, labels, read in data[one.name]:
                value = read
                if family == OLDEST_REVIEW:
                    value = 0.0 if read is None else max(0.0, server_now - read)
                if family in families:  # not the consistency series' KPI: with the KPIs above
                    families[family].add_sample(family + sample, labels, float(value))
            yield from families.values()


def registry_for(collector: GuardCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
