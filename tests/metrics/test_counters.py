"""The cumulative counters of `guard metrics` (guard_bookings_total, guard_validations_total,
guard_validation_failures_total, guard_alerts_opened_total): they move as rows are written,
they do not drop when the retention job deletes the rows they counted, and their scrape query
reads the rows after the watermark on indexes, not the tables. Real PostgreSQL, the real
retention function, a real exposition checked by promtool."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import psycopg
import pytest

from guard import queries
from tests.support.exposition import sample, scrape

PROMTOOL = "/usr/bin/promtool"

SETUP = """
INSERT INTO public.companies (id, name) VALUES (1, 'Praxis A');
INSERT INTO public.calls (id, company_id) SELECT g, 1 FROM generate_series(1, 20) AS g;
"""


def _counters(text: str) -> dict[str, float]:
    """Every sample of the four counters, by its series text."""
    found = re.findall(
        r"^(guard_(?:bookings|validations|validation_failures|alerts_opened)_total(?:\{[^}]*\})?)"
        r" (\S+)$",
        text,
        re.MULTILINE,
    )
    return {series: float(value) for series, value in found}


def _validations(conn: psycopg.Connection[Any], age: str, ok: int, failed: dict[str, int]) -> None:
    conn.execute(
        "INSERT INTO guard.validation_metrics (company_id, call_id, appointment_id, ok,"
        " latency_ms, measured_at) SELECT 1, 1, 1, TRUE, 0.5, now() - %s::interval"
        " FROM generate_series(1, %s)",
        (age, ok),
    )
    for reason, n in failed.items():
        conn.execute(
            "INSERT INTO guard.validation_metrics (company_id, call_id, appointment_id, ok,"
            " failure_reason, latency_ms, measured_at)"
            " SELECT 1, 1, 1, FALSE, %s, 0.5, now() - %s::interval FROM generate_series(1, %s)",
            (reason, age, n),
        )


def _attempts(conn: psycopg.Connection[Any], age: str, state: str, n: int) -> None:
    conn.execute(
        "INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key,"
        " state, created_at, finished_at, booking_uid, appointment_id)"
        " SELECT 1, 100000 + g, 1, %s || ':' || g || ':' || clock_timestamp(), %s,"
        " now() - %s::interval, now() - %s::interval,"
        " CASE WHEN %s IN ('booked', 'recovered') THEN 'uid-' || g END,"
        " CASE WHEN %s IN ('booked', 'recovered') THEN g END"
        " FROM generate_series(1, %s) AS g",
        (state, state, age, age, state, state, n),
    )


def _alerts(conn: psycopg.Connection[Any], age: str, check: str, n: int, *, resolved: bool) -> None:
    conn.execute(
        "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
        " severity, message, status, first_seen_at, last_seen_at, resolved_at, resolution)"
        " SELECT 'c:' || g || ':' || clock_timestamp(), %s, 1, 'call', g, 'high', 'm',"
        " CASE WHEN %s THEN 'resolved' ELSE 'open' END, now() - %s::interval,"
        " now() - %s::interval, CASE WHEN %s THEN now() - %s::interval END,"
        " CASE WHEN %s THEN 'fixed' END FROM generate_series(1, %s) AS g",
        (check, resolved, age, age, resolved, age, resolved, n),
    )


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute(SETUP.encode())
        yield connection


def test_counters_move_as_rows_are_written(db_url: str, conn: psycopg.Connection[Any]) -> None:
    before = scrape(db_url)
    assert sample(before, 'guard_bookings_total{outcome="booked"}') == 0
    assert sample(before, 'guard_validations_total{result="failed"}') == 0
    assert sample(before, 'guard_bookings_total{outcome="queued"}') == 0

    _validations(conn, "1 second", 5, {"booking_uid_mismatch": 2, "appointment_not_found": 1})
    _attempts(conn, "1 second", "booked", 4)
    _attempts(conn, "1 second", "failed", 2)
    _attempts(conn, "1 second", "recovered", 1)
    _attempts(conn, "1 second", "queued", 3)
    _alerts(conn, "1 second", "booked_without_appointment", 3, resolved=False)
    _alerts(conn, "1 second", "retired_check", 1, resolved=False)

    text = scrape(db_url)
    assert sample(text, 'guard_validations_total{result="passed"}') == 5
    assert sample(text, 'guard_validations_total{result="failed"}') == 3
    assert sample(text, 'guard_validation_failures_total{reason="booking_uid_mismatch"}') == 2
    assert sample(text, 'guard_validation_failures_total{reason="appointment_not_found"}') == 1
    assert sample(text, 'guard_bookings_total{outcome="booked"}') == 4
    assert sample(text, 'guard_bookings_total{outcome="failed"}') == 2
    assert sample(text, 'guard_bookings_total{outcome="recovered"}') == 1
    assert sample(text, 'guard_bookings_total{outcome="queued"}') == 3, "queued apart from failed"
    opened = 'guard_alerts_opened_total{check_id="%s",rule_id="%s"}'
    assert sample(text, opened % ("booked_without_appointment", "I4_booked_outcome")) == 3
    assert sample(text, opened % ("retired_check", "(unknown)")) == 1

    # An attempt still calling is no outcome yet; settled, it counts.
    conn.execute(
        "INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key)"
        " VALUES (1, 5, 1, 'in-flight')"
    )
    assert sample(scrape(db_url), 'guard_bookings_total{outcome="failed"}') == 2
    conn.execute(
        "UPDATE guard.booking_attempts SET state = 'failed', finished_at = now()"
        " WHERE idempotency_key = 'in-flight'"
    )
    assert sample(scrape(db_url), 'guard_bookings_total{outcome="failed"}') == 3


def test_counters_survive_a_retention_run(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # Rows written long ago, before the watermark the migration set: the counters start from
    # what the tables hold, as after an upgrade whose first fold has not run yet.
    conn.execute("UPDATE guard.metric_watermark SET folded_before = '-infinity'")
    _validations(conn, "40 days", 7, {"call_flags_disagree": 3})
    _attempts(conn, "40 days", "booked", 6)
    _attempts(conn, "40 days", "queued", 2)
    _alerts(conn, "100 days", "cross_tenant_link", 4, resolved=True)
    _validations(conn, "1 second", 1, {"call_flags_disagree": 1})
    _alerts(conn, "1 second", "cross_tenant_link", 1, resolved=False)
    before = _counters(scrape(db_url))
    assert before['guard_validations_total{result="passed"}'] == 8
    opened = 'guard_alerts_opened_total{check_id="cross_tenant_link",rule_id="I5_tenant_link"}'
    assert before[opened] == 5

    deleted = dict(conn.execute("SELECT target, deleted FROM guard.apply_retention()").fetchall())
    assert deleted["guard.validation_metrics"] == 10, "retention deleted the old metrics"
    assert deleted["guard.alerts"] == 4, "retention deleted the old resolved alerts"

    after = _counters(scrape(db_url))
    assert after == before, "a counter dropped when retention deleted its rows"
    totals = dict(
        conn.execute("SELECT counter || ':' || label, total FROM guard.metric_totals").fetchall()
    )
    assert totals["validations:passed"] == 7 and totals["bookings:booked"] == 6
    assert totals["bookings:queued"] == 2

    # A second run folds nothing again (the watermark moved), and new rows still count.
    conn.execute("SELECT guard.apply_retention()")
    _validations(conn, "1 second", 2, {})
    again = _counters(scrape(db_url))
    assert again['guard_validations_total{result="passed"}'] == 10
    assert again['guard_bookings_total{outcome="booked"}'] == 6


def test_retention_keeps_rows_not_yet_counted(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """With a retention of 0 days, rows of the last hour (after the fold's horizon) stay until a
    later fold has counted them."""
    conn.execute(
        "UPDATE guard.settings SET value = '0' WHERE key = 'retention_validation_metrics_days'"
    )
    _validations(conn, "1 second", 3, {})
    conn.execute("SELECT guard.apply_retention()")
    left = conn.execute("SELECT count(*) FROM guard.validation_metrics").fetchone()
    assert left == (3,)
    assert sample(scrape(db_url), 'guard_validations_total{result="passed"}') == 3


def test_the_scrape_reads_the_rows_after_the_watermark_on_indexes(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    # A month of history folded, a few fresh rows: the query must not read the history.
    conn.execute("UPDATE guard.metric_watermark SET folded_before = '-infinity'")
    _validations(conn, "20 days", 20000, {"booking_uid_mismatch": 2000})
    _attempts(conn, "20 days", "booked", 10000)
    _attempts(conn, "20 days", "failed", 2000)
    _attempts(conn, "20 days", "queued", 2000)
    _alerts(conn, "20 days", "booked_without_appointment", 10000, resolved=False)
    conn.execute("SELECT guard.fold_metric_totals()")
    _validations(conn, "1 second", 5, {"booking_uid_mismatch": 1})
    for table in ("validation_metrics", "booking_attempts", "alerts"):
        conn.execute(f"ANALYZE guard.{table}")
    since_row = conn.execute(queries.METRIC_WATERMARK).fetchone()
    assert since_row is not None
    plan = "\n".join(
        str(row[0])
        for row in conn.execute(
            "EXPLAIN " + queries.METRIC_COUNTERS, {"since": since_row[0]}, prepare=False
        ).fetchall()
    )
    for table in ("validation_metrics", "booking_attempts", "alerts"):
        assert not re.search(rf"Seq Scan on {table}\b", plan), plan
    assert "validation_metrics_measured_at_idx" in plan, plan
    assert "booking_attempts_succeeded_at_idx" in plan, plan
    assert "alerts_first_seen_at_idx" in plan, plan
    text = scrape(db_url)
    assert sample(text, 'guard_validations_total{result="passed"}') == 20005
    assert sample(text, 'guard_bookings_total{outcome="failed"}') == 2000
    assert sample(text, 'guard_bookings_total{outcome="queued"}') == 2000


def test_promtool_accepts_the_counters(db_url: str, conn: psycopg.Connection[Any]) -> None:
    _validations(conn, "1 second", 1, {"appointment_inactive": 1})
    text = scrape(db_url)
    assert "# TYPE guard_validation_failures_total counter" in text
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
