"""A warehouse copy of the booking tables by logical replication (a real publisher with
wal_level=logical, a real subscriber on another server): detection does not run on the copy.
`guard check`, `guard jobs run --once --job detect` and guard.run_job('detect') there say in one
line that detection runs on the publisher and open no alert, also as the owner's non-superuser
jobs login; the missed-run check does not count the skipped jobs as missed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from guard.schema.migrate import Migrator
from tests.security.conftest import LOGINS, create_login
from tests.support.pg_node import PgNode
from tests.support.queries import fetch_one

pytestmark = pytest.mark.slow

DATABASE = "guard_publisher"
WAREHOUSE = "guard_warehouse"
GUARD = [sys.executable, "-m", "guard.cli"]
# Calls whose outcome says booked, without an appointment: each offends booked_without_appointment.
OFFENDING_CALLS = 6
ROWS = f"""
UPDATE guard.settings SET value = '0' WHERE key = 'grace_period_seconds';
INSERT INTO public.companies (id, name) VALUES (1, 'Praxis A');
INSERT INTO public.calls (id, company_id, retell_call_id, session_outcome, created_at)
SELECT g, 1, 'w' || g, 'appointment_booked', now() - interval '5 minutes'
FROM generate_series(1, {OFFENDING_CALLS}) AS g;
"""


def _guard(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GUARD, "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _migrate(url: str) -> None:
    with Migrator(url) as migrator:
        migrator.apply()


@pytest.fixture(scope="module")
def publisher_and_subscriber() -> Iterator[tuple[PgNode, PgNode]]:
    publisher = PgNode.create("wal_level=logical")
    subscriber = PgNode.create()
    try:
        publisher.start()
        subscriber.start()
        with psycopg.connect(publisher.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
        with psycopg.connect(subscriber.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{WAREHOUSE}"')
        _migrate(publisher.url(DATABASE))
        _migrate(subscriber.url(WAREHOUSE))
        with psycopg.connect(publisher.url(DATABASE), autocommit=True) as conn:
            conn.execute(ROWS.encode())
            conn.execute(
                "CREATE PUBLICATION booking_tables"
                " FOR TABLE public.companies, public.calls, public.appointments"
            )
        with psycopg.connect(subscriber.url(WAREHOUSE), autocommit=True) as conn:
            groups: dict[str, str] = dict(
                conn.execute("SELECT kind, role_name FROM guard.role_names").fetchall()
            )
            create_login(conn, LOGINS["owner"], groups["owner"])
            conn.execute("UPDATE guard.settings SET value = '0' WHERE key = 'grace_period_seconds'")
            conn.execute(
                "CREATE SUBSCRIPTION warehouse_copy CONNECTION"
                f" 'host=127.0.0.1 port={publisher.port} dbname={DATABASE} user=postgres'"
                " PUBLICATION booking_tables"
            )
            deadline = time.monotonic() + 60
            while True:
                row = conn.execute("SELECT count(*) FROM public.calls").fetchone()
                if row and row[0] == OFFENDING_CALLS:
                    break
                assert time.monotonic() < deadline, "the subscriber did not copy the calls"
                time.sleep(0.2)
        yield publisher, subscriber
    finally:
        subscriber.destroy()
        publisher.destroy()


def _alerts(url: str) -> int:
    row = fetch_one(
        url,
        "SELECT count(*) FROM guard.alerts WHERE check_id = 'booked_without_appointment'",
    )
    assert row is not None
    return int(row[0])


def _as_owner(url: str) -> str:
    return psycopg.conninfo.make_conninfo(url, user=LOGINS["owner"])


def test_the_copy_would_alert_if_detection_ran_there(
    publisher_and_subscriber: tuple[PgNode, PgNode],
) -> None:
    """What the skip prevents: the copy's rows offend, so a pass there opens alerts."""
    _, subscriber = publisher_and_subscriber
    with psycopg.connect(subscriber.url(WAREHOUSE)) as conn:
        conn.execute("SELECT * FROM guard.detect()")
        opened = conn.execute(
            "SELECT count(*) FROM guard.alerts WHERE check_id = 'booked_without_appointment'"
        ).fetchone()
        conn.rollback()
    assert opened == (OFFENDING_CALLS,)


def test_detection_does_not_run_on_a_subscriber(
    publisher_and_subscriber: tuple[PgNode, PgNode],
) -> None:
    publisher, subscriber = publisher_and_subscriber
    url = subscriber.url(WAREHOUSE)
    line = (
        "this database subscribes to the booking tables (subscription warehouse_copy):"
        " detection runs on the publisher"
    )
    started = time.monotonic()
    for login_url in (url, _as_owner(url)):
        done = _guard(login_url, "check")
        assert done.returncode == 0, done.stderr
        assert [e for e in done.stderr.splitlines() if line in e], done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
        whole = _guard(login_url, "check", "--all", "--json")
        assert whole.returncode == 0 and whole.stdout.strip() == "[]", whole.stderr
        job = _guard(login_url, "jobs", "run", "--once", "--job", "detect")
        assert job.returncode == 0, job.stderr
        assert f"detect: skipped, {line}" in job.stdout, job.stdout
        with psycopg.connect(login_url, autocommit=True) as conn:
            for name in ("detect", "sweep", "reconcile"):
                row = conn.execute("SELECT guard.run_job(%s)", (name,)).fetchone()
                assert row is not None and row[0] == f"{name}: skipped, {line}"
            # another job runs, and its missed-run check leaves the skipped ones alone
            row = conn.execute("SELECT guard.run_job('review_sweep')").fetchone()
            assert row is not None and "review_sweep: succeeded" in row[0]
            missed = conn.execute(
                "SELECT array_agg(entity_ref ORDER BY entity_ref) FROM ("
                " SELECT fingerprint AS entity_ref FROM guard.alerts"
                " WHERE check_id = 'job_missed' AND status = 'open') AS a"
            ).fetchone()
        assert missed is not None
        assert not set(missed[0] or []) & {
            "job_missed:job:detect",
            "job_missed:job:sweep",
            "job_missed:job:reconcile",
        }, missed
    elapsed = time.monotonic() - started
    print(f"\nsubscriber: guard check, jobs run, run_job as two logins: {elapsed:.1f} s")
    assert _alerts(url) == 0
    # the publisher, where detection runs, finds them
    done = _guard(publisher.url(DATABASE), "check")
    assert done.returncode == 1, done.stderr
    assert _alerts(publisher.url(DATABASE)) == OFFENDING_CALLS


def test_a_subscription_to_other_tables_is_no_copy_of_the_bookings(
    publisher_and_subscriber: tuple[PgNode, PgNode],
) -> None:
    """A database on the same subscriber that receives only public.companies (another
    database's subscription receives the booking tables) is not a copy of the bookings:
    guard.booking_subscription() is NULL there and detection runs."""
    publisher, subscriber = publisher_and_subscriber
    other = "guard_companies_copy"
    with psycopg.connect(subscriber.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{other}"')
    try:
        _migrate(subscriber.url(other))
        with psycopg.connect(publisher.url(DATABASE), autocommit=True) as conn:
            conn.execute("CREATE PUBLICATION companies_only FOR TABLE public.companies")
        with psycopg.connect(subscriber.url(other), autocommit=True) as conn:
            conn.execute(
                "CREATE SUBSCRIPTION companies_copy CONNECTION"
                f" 'host=127.0.0.1 port={publisher.port} dbname={DATABASE} user=postgres'"
                " PUBLICATION companies_only"
            )
            deadline = time.monotonic() + 60
            while conn.execute("SELECT count(*) FROM public.companies").fetchone() != (1,):
                assert time.monotonic() < deadline, "the subscriber did not copy the companies"
                time.sleep(0.2)
            assert conn.execute("SELECT guard.booking_subscription()").fetchone() == (None,)
            row = conn.execute("SELECT guard.run_job('detect')").fetchone()
            assert row is not None and row[0].startswith("detect: succeeded"), row
        with psycopg.connect(subscriber.url(WAREHOUSE), autocommit=True) as conn:
            row = conn.execute("SELECT guard.booking_subscription()").fetchone()
            assert row == ("warehouse_copy",)
    finally:
        with psycopg.connect(subscriber.url(other), autocommit=True) as conn:
            conn.execute("DROP SUBSCRIPTION IF EXISTS companies_copy")
        with psycopg.connect(subscriber.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{other}"')
        with psycopg.connect(publisher.url(DATABASE), autocommit=True) as conn:
            conn.execute("DROP PUBLICATION IF EXISTS companies_only")
