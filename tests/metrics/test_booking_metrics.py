"""The booking and breaker series of `guard metrics` derived from the journal and the breaker
events (guard_booking_duration_seconds, guard_booking_retries_total,
guard_breaker_recovery_seconds): bucket edges on both sides, rows they must leave out, the same
values before and after the fold that retention runs, promtool clean, and the counts written by
the real booking path under the application login. Real PostgreSQL, real retention, a real
breaker."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from guard.booking import BookingStatus, CalendarBooking, book_appointment
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.retry import RetryPolicy
from tests.security.conftest import connect_as, login_roles  # noqa: F401  (fixture)
from tests.support.exposition import sample, scrape

PROMTOOL = "/usr/bin/promtool"
ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str, family: str) -> dict[str, float]:
    found = re.findall(
        rf"^({family}(?:_bucket|_count|_sum|_total)?(?:\{{[^}}]*\}})?) (\S+)$", text, re.MULTILINE
    )
    return {series: float(value) for series, value in found}


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute("INSERT INTO public.companies (id, name) VALUES (1, 'Praxis A')")
        yield connection


def _attempt(
    conn: psycopg.Connection[Any],
    state: str,
    seconds: str,
    calendar_calls: int | None,
    *,
    ago: str = "1 second",
) -> None:
    """A settled attempt that took exactly `seconds` (text, exact) from journal to settling."""
    booked = state in ("booked", "recovered")
    conn.execute(
        "INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key,"
        " state, created_at, finished_at, booking_uid, appointment_id, calendar_calls)"
        " SELECT 1, (SELECT coalesce(max(b.call_id), 0) + 1 FROM guard.booking_attempts AS b),"
        " 1, gen_random_uuid()::text, %s,"
        " t - %s::numeric * interval '1 second', t, %s, %s, %s"
        " FROM (SELECT now() - %s::interval AS t) AS at",
        (
            state,
            seconds,
            "uid" if booked else None,
            1 if booked else None,
            calendar_calls,
            ago,
        ),
    )


def test_booking_duration_buckets_and_retry_outcomes(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    before = scrape(db_url)
    for outcome in ("booked", "failed", "queued"):
        assert sample(before, f'guard_booking_duration_seconds_count{{outcome="{outcome}"}}') == 0
    for outcome in ("not_retried", "succeeded_after_retry", "exhausted"):
        assert sample(before, f'guard_booking_retries_total{{outcome="{outcome}"}}') == 0

    _attempt(conn, "booked", "1", 1)  # exactly on a bound: in that bucket (le is <=)
    _attempt(conn, "booked", "1.000001", 2)  # just above: the next bucket
    _attempt(conn, "booked", "0.1", 1)  # the lowest bound
    _attempt(conn, "booked", "60.000001", 3)  # above the highest bound: +Inf only
    _attempt(conn, "failed", "10", 3)
    _attempt(conn, "queued", "0.002", 0)  # refused at once: timed, never retried
    _attempt(conn, "queued", "3", 2)  # the circuit refused the third call
    _attempt(conn, "booked", "5", None)  # settled by something else: left out of both
    _attempt(conn, "recovered", "500", None)
    conn.execute(
        "INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key)"
        " VALUES (1, 99, 1, 'still-calling')"
    )

    text = scrape(db_url)
    bucket = 'guard_booking_duration_seconds_bucket{{le="{}",outcome="{}"}}'
    assert sample(text, bucket.format("0.1", "booked")) == 1
    assert sample(text, bucket.format("0.5", "booked")) == 1
    assert sample(text, bucket.format("1.0", "booked")) == 2
    assert sample(text, bucket.format("2.0", "booked")) == 3
    assert sample(text, bucket.format("60.0", "booked")) == 3
    assert sample(text, bucket.format("+Inf", "booked")) == 4
    assert sample(text, 'guard_booking_duration_seconds_count{outcome="booked"}') == 4
    assert sample(text, 'guard_booking_duration_seconds_sum{outcome="booked"}') == pytest.approx(
        1 + 1.000001 + 0.1 + 60.000001
    )
    assert sample(text, bucket.format("5.0", "failed")) == 0
    assert sample(text, bucket.format("10.0", "failed")) == 1
    assert sample(text, bucket.format("0.1", "queued")) == 1
    assert sample(text, 'guard_booking_duration_seconds_count{outcome="queued"}') == 2
    assert 'outcome="recovered"' not in "".join(_samples(text, "guard_booking_duration_seconds"))

    retries = 'guard_booking_retries_total{{outcome="{}"}}'
    assert sample(text, retries.format("not_retried")) == 2
    assert sample(text, retries.format("succeeded_after_retry")) == 2
    assert sample(text, retries.format("exhausted")) == 2, "failed after 3, queued after 2"

    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def _events(conn: psycopg.Connection[Any], key: str, steps: list[tuple[str, str, str]]) -> None:
    """Transitions of one circuit: (from, to, seconds after the first), generations in order."""
    for generation, (from_state, to_state, after) in enumerate(steps, start=1):
        conn.execute(
            "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
            " host, pid, occurred_at)"
            " VALUES (%s, %s, %s, %s, 'test', 'h', 1,"
            " timestamptz '2026-01-01 00:00:00+00' + %s::numeric * interval '1 second')",
            (key, generation, from_state, to_state, after),
        )


def test_breaker_recovery_from_opening_to_closing(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "INSERT INTO guard.breaker_state (key, state, generation, changed_at)"
        " VALUES ('quiet', 'closed', 1, now())"
    )
    # Opened, a failed probe reopened it, then two probes closed it: exactly 300 s after the
    # first opening, on a bound.
    _events(
        conn,
        "calendar",
        [
            ("closed", "open", "0"),
            ("open", "half_open", "30"),
            ("half_open", "open", "30.5"),
            ("open", "half_open", "90"),
            ("half_open", "closed", "300"),
            # a second outage, just past the same bound
            ("closed", "open", "1000"),
            ("open", "half_open", "1030"),
            ("half_open", "closed", "1300.001"),
            # closed by hand: not a recovery
            ("closed", "open", "2000"),
            ("open", "closed", "2001"),
        ],
    )
    # A close whose opening retention deleted: nothing to measure from.
    _events(conn, "crm", [("open", "half_open", "0"), ("half_open", "closed", "5")])

    text = scrape(db_url)
    bucket = 'guard_breaker_recovery_seconds_bucket{{key="{}",le="{}"}}'
    assert sample(text, bucket.format("calendar", "120.0")) == 0
    assert sample(text, bucket.format("calendar", "300.0")) == 1
    assert sample(text, bucket.format("calendar", "600.0")) == 2
    assert sample(text, 'guard_breaker_recovery_seconds_count{key="calendar"}') == 2
    assert sample(text, 'guard_breaker_recovery_seconds_sum{key="calendar"}') == pytest.approx(
        600.001
    )
    assert 'key="crm"' not in text, "no opening to measure from, no circuit state: no series"
    assert sample(text, 'guard_breaker_recovery_seconds_count{key="quiet"}') == 0, "from 0"


def test_the_new_series_survive_a_retention_run(db_url: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE guard.metric_watermark SET folded_before = '-infinity'")
    conn.execute(
        "UPDATE guard.settings SET value = '1' WHERE key = 'retention_breaker_events_days'"
    )
    _attempt(conn, "booked", "0.3", 2, ago="2 days")
    _attempt(conn, "failed", "12", 3, ago="2 days")
    _attempt(conn, "booked", "0.3", 1)
    _events(conn, "calendar", [("closed", "open", "0"), ("half_open", "closed", "45")])
    conn.execute(
        "UPDATE guard.breaker_events SET recorded_at = now() - interval '2 days',"
        " occurred_at = occurred_at - interval '1 year'"
    )
    families = (
        "guard_booking_duration_seconds",
        "guard_booking_retries",
        "guard_breaker_recovery_seconds",
    )

    def series(text: str) -> dict[str, float]:
        return {k: v for f in families for k, v in _samples(text, f).items()}

    before = series(scrape(db_url))
    assert before['guard_breaker_recovery_seconds_count{key="calendar"}'] == 1
    assert before['guard_booking_retries_total{outcome="succeeded_after_retry"}'] == 1

    deleted = dict(conn.execute("SELECT target, deleted FROM guard.apply_retention()").fetchall())
    assert deleted["guard.breaker_events"] == 2, "retention deleted the events"
    totals = dict(
        conn.execute("SELECT counter || ':' || label, total FROM guard.metric_totals").fetchall()
    )
    assert totals["booking_duration:booked|0.5"] == 1
    assert totals["booking_duration:failed|20"] == 1
    assert totals["booking_duration:failed|sum_us"] == 12_000_000
    assert totals["booking_retries:exhausted"] == 1
    assert totals["breaker_recovery:calendar|60"] == 1

    after = series(scrape(db_url))
    assert after == before, "a series dropped when retention deleted its rows"
    conn.execute("SELECT guard.apply_retention()")
    assert series(scrape(db_url)) == before, "a second fold counted again"


def test_the_booking_path_journals_its_calendar_calls(
    db_url: str,
    login_roles: dict[str, str],  # noqa: F811  (the fixture imported above)
) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        admin.execute("INSERT INTO services (id, company_id, name) VALUES (5, 1, 'S')")
        admin.execute(
            "INSERT INTO calls (id, company_id, retell_call_id)"
            " SELECT g, 1, 'a' || g FROM generate_series(1, 4) AS g"
        )
    breakers = BreakerRegistry(
        in_memory=True, default=BreakerConfig(failure_threshold=5, cooldown_seconds=60)
    )
    retry = RetryPolicy(max_attempts=3, base_delay_seconds=0.001, max_delay_seconds=0.001)
    answers: dict[int, list[bool]] = {1: [True], 2: [False, True], 3: [False, False, False]}

    def calendar(call_id: int) -> Any:
        def book(key: str) -> CalendarBooking:
            if not answers[call_id].pop(0):
                raise ConnectionError("calendar unreachable")
            return CalendarBooking(uid=f"uid-{key[:8]}")

        return book

    with connect_as(db_url, login_roles["application"]) as app:
        statuses = [
            book_appointment(
                app,
                call_id=call,
                service_id=5,
                book=calendar(call),
                breakers=breakers,
                retry_policy=retry,
            ).status
            for call in (1, 2, 3)
        ]
        breakers.service(5).force_open("test")  # an open circuit: refused before the calendar
        statuses.append(
            book_appointment(
                app, call_id=4, service_id=5, book=calendar(1), breakers=breakers
            ).status
        )
    assert statuses == [
        BookingStatus.BOOKED,
        BookingStatus.BOOKED,
        BookingStatus.FAILED,
        BookingStatus.QUEUED,
    ]
    with psycopg.connect(db_url) as admin:
        rows = admin.execute(
            "SELECT call_id, state, calendar_calls,"
            " guard.booking_retry_outcome(state, calendar_calls)"
            " FROM guard.booking_attempts ORDER BY call_id"
        ).fetchall()
    assert rows == [
        (1, "booked", 1, "not_retried"),
        (2, "booked", 2, "succeeded_after_retry"),
        (3, "failed", 3, "exhausted"),
        (4, "queued", 0, None),
    ]
    text = scrape(db_url)
    assert sample(text, 'guard_booking_retries_total{outcome="exhausted"}') == 1
    assert sample(text, 'guard_booking_duration_seconds_count{outcome="queued"}') == 1


def test_the_journal_refuses_a_negative_count(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        _attempt(conn, "failed", "1", -1)


def test_docs_name_every_family_and_every_bound(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """docs/metrics.md's table names every family the exporter serves, and the bucket bounds it
    lists for each histogram are the ones guard.histogram_bounds defines."""
    doc = (ROOT / "docs/metrics.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(guard_\w+)` \|.*$", doc, re.M)}
    served = set(re.findall(r"^# TYPE (guard_\w+) \w+$", scrape(db_url), re.MULTILINE))
    # a gauge histogram's _gcount and _gsum come with a TYPE line of their own; its row names them
    served = {re.sub(r"_(gcount|gsum)$", "", name) for name in served}
    assert served - set(rows) == set(), "served, not documented"
    for histogram, family in (
        ("booking_duration", "guard_booking_duration_seconds"),
        ("breaker_recovery", "guard_breaker_recovery_seconds"),
    ):
        listed = re.search(r"Buckets \(`le`, seconds\): ([\d., ]+), \+Inf", rows[family])
        assert listed, f"{family}: no bucket bounds in docs/metrics.md"
        row = conn.execute("SELECT guard.histogram_bounds(%s)", (histogram,)).fetchone()
        assert row is not None
        assert [float(b) for b in listed.group(1).split(", ")] == list(row[0]), family


def test_retry_outcome_and_bucket_edges_of_the_sql_functions(
    conn: psycopg.Connection[Any],
) -> None:
    outcomes = conn.execute(
        "SELECT s, n, guard.booking_retry_outcome(s, n) FROM (VALUES"
        " (NULL, 1), (NULL, 2), ('calling', 2), ('unknown', 1), ('recovered', 2),"
        " ('booked', NULL), ('booked', 0), ('queued', 0), ('booked', 1), ('failed', 1),"
        " ('queued', 1), ('booked', 2), ('failed', 2), ('queued', 5)) AS v (s, n)"
    ).fetchall()
    assert [outcome for _, _, outcome in outcomes] == [
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "not_retried",
        "not_retried",
        "not_retried",
        "succeeded_after_retry",
        "exhausted",
        "exhausted",
    ]
    buckets = conn.execute(
        "SELECT guard.histogram_bucket(h, s) FROM (VALUES"
        " ('booking_duration', 0), ('booking_duration', 0.1),"
        " ('booking_duration', 0.1000001), ('booking_duration', 60),"
        " ('booking_duration', 60.000001), ('booking_duration', NULL),"
        " ('breaker_recovery', 15), ('breaker_recovery', 15.001), ('breaker_recovery', 21600),"
        " ('breaker_recovery', 21600.5), ('no_such_histogram', 1)) AS v (h, s)"
    ).fetchall()
    assert [label for (label,) in buckets] == [
        "0.1",
        "0.1",
        "0.25",
        "60",
        "+Inf",
        "+Inf",
        "15",
        "30",
        "21600",
        "+Inf",
        "+Inf",
    ]


def test_a_count_that_is_not_a_whole_number_never_stops_a_rollback(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("INSERT INTO public.services (id, company_id, name) VALUES (1, 1, 'S')")
    conn.execute(
        "INSERT INTO public.calls (id, company_id) SELECT g, 1 FROM generate_series(1, 5) AS g"
    )
    counts = ['"three"', "-1", "2.5", "null", "4"]
    for call, count in enumerate(counts, start=1):
        [(key,)] = conn.execute(
            "SELECT idempotency_key FROM guard.begin_booking_attempt(%s, 1)", (call,)
        ).fetchall()
        conn.execute(
            "SELECT guard.fail_booking_attempt(%s, 'calendar_booking_failure',"
            " jsonb_build_object('calendar_calls', %s::jsonb))",
            (key, count),
        )
    rows = conn.execute(
        "SELECT b.state, b.calendar_calls, (SELECT count(*) FROM guard.review_items AS r"
        " WHERE r.call_id = b.call_id) FROM guard.booking_attempts AS b ORDER BY b.call_id"
    ).fetchall()
    assert rows == [
        ("failed", None, 1),
        ("failed", None, 1),
        ("failed", None, 1),
        ("failed", None, 1),
        ("failed", 4, 1),
    ]
