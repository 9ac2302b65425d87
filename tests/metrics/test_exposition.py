"""A full scrape of `guard metrics`, byte for byte: every family the exporter writes, from a
database holding rows for each series (counters before and after a retention run's fold). What
moves with the clock (durations, ages) is masked; everything else is compared with
exposition.txt beside this file, and a scrape of a database without rows with
exposition-empty.txt."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from tests.metrics.test_metrics import DATA
from tests.support.exposition import scrape

HERE = Path(__file__).parent

MORE = """
INSERT INTO public.services (id, company_id, name) VALUES (1, 1, 'S');
UPDATE guard.metric_watermark SET folded_before = '-infinity';
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state,
    created_at, finished_at, booking_uid, appointment_id, calendar_calls)
SELECT 1, 1000 + row_number() OVER (), 1, s.state || s.took, s.state,
    now() - s.ago - s.took * interval '1 second',
    now() - s.ago, CASE WHEN s.state IN ('booked', 'recovered') THEN 'uid' END,
    CASE WHEN s.state IN ('booked', 'recovered') THEN 1 END, s.calls
FROM (VALUES ('booked', 0.3, 2, interval '2 days'), ('failed', 12, 3, interval '2 days'),
    ('booked', 1, 1, interval '1 second'), ('booked', 61, 3, interval '1 second'),
    ('queued', 0.002, 0, interval '1 second'), ('queued', 3, 2, interval '1 second'),
    ('recovered', 500, NULL, interval '1 second'))
    AS s (state, took, calls, ago);
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid,
    occurred_at, recorded_at)
VALUES ('calendar', 1, 'closed', 'open', 't', 'h', 1, '2026-01-01', now() - interval '2 days'),
    ('calendar', 2, 'half_open', 'closed', 't', 'h', 1, '2026-01-01 00:00:45',
        now() - interval '2 days');
UPDATE guard.settings SET value = '1' WHERE key = 'retention_breaker_events_days';
INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, error, duration_ms)
SELECT j.name, timestamptz '2026-01-01' + r.at, timestamptz '2026-01-01' + r.at, r.status,
    CASE r.status WHEN 'failed' THEN 'e' END, 1
FROM (SELECT name FROM guard.jobs ORDER BY name LIMIT 2) AS j,
    (VALUES (interval '1 hour', 'succeeded'), (interval '2 hours', 'failed')) AS r (at, status);
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at) VALUES
    ('alert', 1, 'email', 'delivered', now()), ('alert', 2, 'email', 'pending', NULL),
    ('alert', 1, 'slack', 'failed', NULL), ('report', 20261125, 'email', 'delivered', now());
"""


def _masked(text: str) -> str:
    moving = r"guard_scrape_duration_seconds|guard_series_age_seconds\{[^}]*\}"
    moving += r'|guard_review_oldest_open_age_seconds|guard_kpi_value\{kpi="alert_response_p95"\}'
    return re.sub(rf"^({moving}) \S+$", r"\1 <moves>", text, flags=re.MULTILINE)


def test_a_full_scrape_byte_for_byte(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
        conn.execute(MORE.encode())
        conn.execute("SELECT guard.apply_retention()")
        conn.execute(
            "INSERT INTO guard.booking_attempts (company_id, call_id, service_id,"
            " idempotency_key, state, created_at, finished_at, calendar_calls)"
            " VALUES (1, 2000, 1, 'after', 'failed', now() - interval '20 s', now(), 3)"
        )
        conn.execute(
            "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
            " host, pid, occurred_at) VALUES"
            " ('crm', 1, 'closed', 'open', 't', 'h', 1, now() - interval '300.5 s'),"
            " ('crm', 3, 'half_open', 'closed', 't', 'h', 1, now())"
        )
    assert _masked(scrape(db_url)) == (HERE / "exposition.txt").read_text()


def test_a_scrape_without_rows_byte_for_byte(db_url: str) -> None:
    assert _masked(scrape(db_url)) == (HERE / "exposition-empty.txt").read_text()
