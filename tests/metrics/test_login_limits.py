"""`guard metrics` within its login's limits (docs/metrics.md, "The login's limits"): a DBA gives
the exporter's login a statement_timeout, a lock_timeout, an idle_in_transaction_session_timeout.
Every series is read in a transaction of its own whose statement_timeout is never above the
login's, a lock wait the login's lock_timeout ends is tried again for as long as the query may
take, and what cannot be read within the login's limits is one line naming the setting: the
series keeps its last values (stale), `--once` exits 1.

A read is made slower than the login allows the way a slow disk makes it, deterministically: a
restrictive row-level security policy of the test's own sleeps for each review item read."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from prometheus_client import generate_latest

from guard.ops.metrics import SERIES, GuardCollector, registry_for
from tests.metrics.test_metrics import DATA
from tests.support.exposition import sample
from tests.support.locks import lock_held
from tests.support.logins import owner_login

GUARD = str(Path(sys.executable).with_name("guard"))
LOGIN = "metrics_login"
ALL_LIMITS = {
    "statement_timeout": "300ms",
    "lock_timeout": "100ms",
    "idle_in_transaction_session_timeout": "100ms",
}

# n open alerts over three checks, made in SQL.
_OPEN_ALERTS = """
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity,
    message)
SELECT 'volume:' || g,
    (ARRAY['booked_without_appointment', 'cross_tenant_link', 'call_without_direction'])
    [1 + g %% 3],
    1, 'call', 100 + g, (ARRAY['low', 'high', 'critical'])[1 + g %% 3], 'm'
FROM generate_series(1, %s) AS g
"""
# Each review item read by the login takes `seconds` (superusers bypass the policy).
_SLOW_REVIEW = """
CREATE FUNCTION public.slow_row(seconds float8) RETURNS boolean LANGUAGE sql VOLATILE
AS $$ SELECT pg_sleep(seconds) IS NOT NULL $$;
CREATE POLICY slow_reads ON guard.review_items AS RESTRICTIVE FOR SELECT TO PUBLIC
USING (public.slow_row(%s));
INSERT INTO guard.review_items (company_id, call_id, reason)
SELECT 1, g, 'other' FROM generate_series(5, 7) AS g;
"""


@pytest.fixture
def login(db_url: str) -> Callable[..., str]:
    """The exporter's login (a member of the owner role, as the dispatcher's) with the given
    settings, on this database's data (DATA of test_metrics)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())

    def make(**settings: str) -> str:
        return owner_login(db_url, LOGIN, **settings)

    return make


def _stale(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in re.findall(r'^guard_series_stale\{series="(\w+)"\} (\S+)$', text, re.M)
    }


def _open_alerts(text: str) -> float:
    return sum(float(n) for n in re.findall(r"^guard_alerts_open\{.*\} (\S+)$", text, re.M))


def _once(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GUARD, "--database-url", url, "metrics", "--once", *args],
        env={k: v for k, v in os.environ.items() if k != "GUARD_DEBUG"},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _every_series_read(result: subprocess.CompletedProcess[str], alerts: int) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]
    assert sample(result.stdout, "guard_up") == 1
    assert _stale(result.stdout) == {one.name: 0.0 for one in SERIES}
    assert _open_alerts(result.stdout) == alerts + 4  # DATA has 4


def test_every_series_is_read_under_the_logins_limits(
    db_url: str, login: Callable[..., str]
) -> None:
    """A cheap variant of the issue's: 2 000 open alerts, every limit of ALL_LIMITS."""
    url = login(**ALL_LIMITS)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(_OPEN_ALERTS, (2000,))
    _every_series_read(_once(url), 2000)


@pytest.mark.slow
def test_every_series_is_read_with_20000_open_alerts_under_the_logins_limits(
    db_url: str, login: Callable[..., str]
) -> None:
    """The issue's figures: 20 000 open alerts, statement_timeout 300 ms, lock_timeout and
    idle_in_transaction_session_timeout 100 ms; a serving exporter, its warm-up and scrapes
    further apart than the idle timeout, then `--once`."""
    url = login(**ALL_LIMITS)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(_OPEN_ALERTS, (20000,))
        conn.execute("ANALYZE guard.alerts")
    proc = subprocess.Popen(
        [GUARD, "--database-url", url, "metrics", "--port", "0", "--cache-interval", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"serving (http://\S+/metrics)", proc.stderr.readline())
        assert match
        for _ in range(3):
            time.sleep(0.5)  # longer than idle_in_transaction_session_timeout
            with urllib.request.urlopen(match.group(1), timeout=30) as response:
                body = response.read().decode()
            assert sample(body, "guard_up") == 1
            assert _open_alerts(body) == 20004
    finally:
        proc.terminate()
        _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "failed" not in errors and "Traceback" not in errors, errors
    assert _stale(body) == {one.name: 0.0 for one in SERIES}
    _every_series_read(_once(url), 20000)


def test_a_serving_exporter_is_never_idle_in_a_transaction(
    db_url: str, login: Callable[..., str]
) -> None:
    """idle_in_transaction_session_timeout 250 ms, scrapes 600 ms apart on one connection: the
    server never ends the exporter's session (guard_up stays 1, nothing is said). 250 ms, not
    100: a loaded test machine can stall this process that long between two statements of one
    series' transaction, which is not what this test is about."""
    url = login(idle_in_transaction_session_timeout="250ms")
    collector = GuardCollector(url, cache_interval_s=0)
    try:
        for _ in range(3):
            text = generate_latest(registry_for(collector)).decode()
            assert sample(text, "guard_up") == 1
            assert _stale(text) == {one.name: 0.0 for one in SERIES}
            time.sleep(0.6)
    finally:
        collector.close()


def test_a_lock_held_less_long_than_a_query_may_wait_is_waited_out(
    db_url: str, login: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """Another session holds guard.alerts (three series read it) for 0.8 s; the login's
    lock_timeout ends each wait after 100 ms. Without a lock_timeout each query would wait up to
    --statement-timeout-ms (2 s) for the lock: with it, it waits as long, in several tries."""
    url = login(lock_timeout="100ms")
    collector = GuardCollector(url)
    try:
        with lock_held(db_url, "LOCK TABLE guard.alerts IN ACCESS EXCLUSIVE MODE", 0.8):
            text = generate_latest(registry_for(collector)).decode()
    finally:
        collector.close()
    assert _stale(text) == {one.name: 0.0 for one in SERIES}, caplog.text
    assert _open_alerts(text) == 4
    assert caplog.text == ""


# Serial: the scrape is timed (1.5 s) while a lock is held for a fixed 2 s, and must meet the
# lock before it is released.
@pytest.mark.serial
def test_a_lock_held_longer_keeps_the_last_values_with_one_line(
    db_url: str, login: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """guard.job_runs (only the jobs series reads it) held for 2 s, --statement-timeout-ms 500:
    the jobs series keeps its last values, marked stale, the scrape ends within about the
    500 ms, and one line names the lock_timeout. The look-up of the setting leaves no
    transaction open: the next scrape after idle_in_transaction_session_timeout still reads
    PostgreSQL."""
    url = login(lock_timeout="100ms", idle_in_transaction_session_timeout="100ms")
    collector = GuardCollector(url, statement_timeout_ms=500, cache_interval_s=0)
    try:
        generate_latest(registry_for(collector))
        with lock_held(db_url, "LOCK TABLE guard.job_runs IN ACCESS EXCLUSIVE MODE", 2.0):
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="guard.metrics"):
                during = generate_latest(registry_for(collector)).decode()
            took = time.monotonic() - started
        time.sleep(0.3)
        after = generate_latest(registry_for(collector)).decode()
    finally:
        collector.close()
    assert took < 1.5, f"the scrape took {took:.1f} s"
    assert sample(during, "guard_up") == 1
    assert _stale(during) == {one.name: float(one.name == "jobs") for one in SERIES}
    assert 'guard_job_last_run_status{job_name="retention",status="failed"} 0.0' in during
    assert [r.getMessage() for r in caplog.records] == [
        "reading series jobs cannot be done: another session held a lock it needs for 0.5 s"
        " (each wait ended by this login's lock_timeout = 100ms); raise it for the login that"
        f" runs guard metrics (ALTER ROLE \"{LOGIN}\" SET lock_timeout = '...'), or end the"
        " session that holds the lock; last values kept"
    ]
    assert sample(after, "guard_up") == 1
    assert _stale(after) == {one.name: 0.0 for one in SERIES}


def test_a_series_slower_than_the_logins_statement_timeout_is_one_line_and_exit_1(
    db_url: str, login: Callable[..., str]
) -> None:
    """The login's statement_timeout (200 ms) is lower than --statement-timeout-ms (2 s): it is
    the one that applies, never raised. Reading the review items takes 0.5 s: that series is
    stale, the others are read, and `--once` writes them and exits 1 with one line."""
    url = login(statement_timeout="200ms")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(_SLOW_REVIEW % "0.1")
    result = _once(url)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sample(result.stdout, "guard_up") == 1
    # (the KPIs read the review queue too)
    assert _stale(result.stdout) == {
        one.name: float(one.name in ("review", "kpis")) for one in SERIES
    }
    review, kpis = (
        f"guard metrics: reading series {series} cannot be done: it takes longer than this"
        " login's statement_timeout = 200ms; raise it for the login that runs guard metrics"
        f" (ALTER ROLE \"{LOGIN}\" SET statement_timeout = '...')"
        for series in ("review", "kpis")
    )
    assert result.stderr.splitlines() == [
        f"{review}; last values kept",
        f"{kpis}; last values kept",
        f"guard: error: {kpis}",
    ]


def test_a_series_slower_than_the_exporters_own_timeout_is_stale_and_exit_0(
    db_url: str, login: Callable[..., str]
) -> None:
    """The other side: the login's statement_timeout (5 s) is higher than
    --statement-timeout-ms (200 ms), which applies. That is the exporter's own limit, not the
    login's: the series is stale, said so, and `--once` exits 0 as for a locked table."""
    url = login(statement_timeout="5s")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(_SLOW_REVIEW % "0.1")
    result = _once(url, "--statement-timeout-ms", "200")
    assert result.returncode == 0, result.stderr
    # (the KPIs read the review queue too)
    assert _stale(result.stdout) == {
        one.name: float(one.name in ("review", "kpis")) for one in SERIES
    }
    assert result.stderr.splitlines() == [
        f"guard metrics: series {series} failed, last value kept: it takes longer than"
        " --statement-timeout-ms = 200"
        for series in ("review", "kpis")
    ]
