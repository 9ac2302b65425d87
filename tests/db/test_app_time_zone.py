"""The application's time zone (issue 72, row 3). A Laravel application writes wall-clock times of
its `app.timezone` into `timestamp without time zone` columns; Booking Guard reads them in the
zone declared once (setting app_time_zone), never in the session's TimeZone. Here the tables are
made as Laravel makes them, the application is in Europe/Berlin, and every answer is asked for
from sessions in UTC, America/New_York and Europe/Berlin. Before the setting, a session in New
York found 0 of 3 phantom bookings and a UTC session saw the rows an hour in the future."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from devtools.legacy_schema import LEGACY_SCHEMA
from guard.cli import main
from guard.schema.migrate import Migrator
from tests.support.postgres import Cluster

APP_ZONE = "Europe/Berlin"
SESSION_ZONES = ("UTC", "America/New_York", "Europe/Berlin")
# the application's tables as its own migrations made them, without the legacy rows
LARAVEL_TABLES = LEGACY_SCHEMA.split("INSERT INTO", 1)[0]


def _berlin_wall_clock(ago: str) -> str:
    """SQL for what the application writes `ago` before now: Berlin's wall-clock time."""
    return f"((now() - interval '{ago}') AT TIME ZONE '{APP_ZONE}')"


def _adopt_laravel_in_berlin(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LARAVEL_TABLES.encode())
    with Migrator(url) as migrator:
        migrator.apply()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = to_jsonb(%s::text) WHERE key = 'app_time_zone'",
            (APP_ZONE,),
        )
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'Praxis Berlin')")


@pytest.fixture(scope="module")
def laravel_in_berlin_template(pg_cluster: Cluster) -> Iterator[str]:
    """Laravel's tables, Booking Guard applied, the zone declared: built once for the module."""
    with pg_cluster.template("laravel_in_berlin_template", _adopt_laravel_in_berlin) as name:
        yield name


@pytest.fixture
def laravel_in_berlin(pg_cluster: Cluster, laravel_in_berlin_template: str) -> Iterator[str]:
    """A fresh clone of it for each test."""
    with pg_cluster.database(template=laravel_in_berlin_template) as url:
        yield url


def _call(conn: psycopg.Connection[Any], ago: str, booked: bool, name: str) -> int:
    row = conn.execute(
        "INSERT INTO calls (company_id, retell_call_id, session_outcome, appointment_made,"
        " booking_id, created_at, updated_at)"
        f" VALUES (1, %s, %s, %s, %s, {_berlin_wall_clock(ago)}, {_berlin_wall_clock(ago)})"
        " RETURNING id",
        (name, "appointment_booked" if booked else "information_only", booked, f"bk_{name}"),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _in_zone(
    url: str, zone: str, query: str, params: tuple[object, ...] = (), role: str | None = None
) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        if role is not None:
            conn.execute(f'SET ROLE "{role}"')
        return conn.execute(query.encode(), params).fetchall()


def _entities_in_zone(url: str, zone: str, query: str) -> set[int]:
    """The entity ids `query` returns (its first column) in a session of time zone `zone`."""
    return {int(entity) for (entity,) in _in_zone(url, zone, query)}


def test_phantom_bookings_are_found_from_every_session_zone(laravel_in_berlin: str) -> None:
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        phantoms = {_call(conn, "10 minutes", True, f"phantom_{i}") for i in range(3)}
        # inside the 30 s grace period: the booking may still come
        for i in range(3):
            _call(conn, "5 seconds", True, f"fresh_{i}")
    for zone in SESSION_ZONES:
        found = _entities_in_zone(
            laravel_in_berlin, zone, "SELECT entity_id FROM guard.check_booked_without_appointment"
        )
        assert found == phantoms, zone


def test_a_detection_pass_in_one_zone_is_not_undone_in_another(laravel_in_berlin: str) -> None:
    """The issue's harm: a pass from a New York session resolved the alerts a UTC pass opened."""
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        phantoms = {_call(conn, "10 minutes", True, f"phantom_{i}") for i in range(3)}
    for zone in SESSION_ZONES:
        _in_zone(laravel_in_berlin, zone, "SELECT * FROM guard.detect()")
        open_alerts = _entities_in_zone(
            laravel_in_berlin,
            zone,
            "SELECT entity_id FROM guard.alerts"
            " WHERE check_id = 'booked_without_appointment' AND status = 'open'",
        )
        assert open_alerts == phantoms, zone


def test_the_orphan_grace_period_is_counted_in_the_applications_zone(
    laravel_in_berlin: str,
) -> None:
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        orphans = set()
        for ago, name in (("10 minutes", "old"), ("5 seconds", "fresh")):
            row = conn.execute(
                "INSERT INTO appointments (company_id, calcom_v2_booking_id, source, starts_at,"
                f" created_at, updated_at) VALUES (1, %s, 'retell_webhook', now() + interval"
                f" '1 day', {_berlin_wall_clock(ago)}, {_berlin_wall_clock(ago)}) RETURNING id",
                (f"bk_orphan_{name}",),
            ).fetchone()
            assert row is not None
            if name == "old":
                orphans.add(int(row[0]))
    for zone in SESSION_ZONES:
        found = _entities_in_zone(
            laravel_in_berlin, zone, "SELECT entity_id FROM guard.check_orphaned_voice_appointment"
        )
        assert found == orphans, zone


def test_the_kpi_window_is_the_same_day_in_every_session(laravel_in_berlin: str) -> None:
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        for ago in ("1 hour", "23 hours", "23 hours 50 minutes"):
            _call(conn, ago, False, f"in_{ago}")
        for ago in ("24 hours 10 minutes", "30 hours"):
            _call(conn, ago, False, f"out_{ago}")
    for zone in SESSION_ZONES:
        [(sample,)] = _in_zone(
            laravel_in_berlin,
            zone,
            "SELECT sample_size FROM guard.kpis WHERE kpi = 'consistency_rate'",
        )
        assert sample == 3, zone


def test_a_daily_report_across_the_change_to_winter_time(laravel_in_berlin: str) -> None:
    """2026-10-25: Berlin's clocks go back from 03:00 CEST to 02:00 CET. A report day is a UTC
    day; the application's wall-clock times land in the UTC day they happened in."""
    written = {
        # Berlin wall clock -> the UTC day it happened in
        "2026-10-25 01:30:00": "2026-10-24",  # CEST, 23:30 UTC the day before
        "2026-10-25 03:30:00": "2026-10-25",  # CET, 02:30 UTC
        "2026-10-26 00:30:00": "2026-10-25",  # CET, 23:30 UTC
    }
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        for wall_clock in written:
            conn.execute(
                "INSERT INTO calls (company_id, retell_call_id, session_outcome, created_at,"
                " updated_at) VALUES (1, %s, 'information_only', %s::timestamp, %s::timestamp)",
                (f"dst_{wall_clock}", wall_clock, wall_clock),
            )
    for zone in SESSION_ZONES:
        totals = {
            day: _in_zone(
                laravel_in_berlin,
                zone,
                "SELECT coalesce(sum(total_calls), 0) FROM guard.compute_daily_report(%s::date)",
                (day,),
            )[0][0]
            for day in ("2026-10-24", "2026-10-25")
        }
        assert totals == {"2026-10-24": 1, "2026-10-25": 2}, zone


def test_reports_show_instants_and_own_writes_use_the_applications_clock(
    laravel_in_berlin: str,
) -> None:
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        call = _call(conn, "1 minute", False, "linked")
        conn.execute("SELECT set_config('TimeZone', 'America/New_York', false)")
        # the appointment-insert trigger stamps the call (Booking Guard's write): updated_at is
        # the application's wall-clock column, appointment_linked_at one Booking Guard added
        conn.execute(
            "INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id, source,"
            " starts_at, created_at, updated_at) VALUES (1, %s, 'bk_linked', 'retell_webhook',"
            f" now() + interval '1 day', {_berlin_wall_clock('0 seconds')},"
            f" {_berlin_wall_clock('0 seconds')})",
            (call,),
        )
        row = conn.execute(
            "SELECT updated_at, appointment_linked_at, created_at FROM calls WHERE id = %s",
            (call,),
        ).fetchone()
    assert row is not None
    updated_wall_clock, linked_at, created_wall_clock = row
    now = datetime.now(UTC)
    assert abs(updated_wall_clock - now.astimezone(ZoneInfo(APP_ZONE)).replace(tzinfo=None)) < (
        timedelta(seconds=30)
    )
    assert abs(linked_at - now) < timedelta(seconds=30)
    expected = created_wall_clock.replace(tzinfo=ZoneInfo(APP_ZONE))
    reader = f"tz_reader_{os.getpid()}"  # roles are the cluster's: one name per test process
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        [(reporting,)] = conn.execute(
            "SELECT role_name FROM guard.role_names WHERE kind = 'reporting'"
        ).fetchall()
        conn.execute(f'CREATE ROLE "{reader}" IN ROLE "{reporting}"')
        conn.execute("SELECT guard.tenant_grant(%s, 1)", (reader,))
    try:
        for zone in SESSION_ZONES:
            [(reported,)] = _in_zone(
                laravel_in_berlin,
                zone,
                "SELECT created_at FROM guard.calls_report WHERE id = %s",
                (call,),
                role=reader,
            )
            assert reported == expected, zone
    finally:
        with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
            conn.execute("SELECT guard.tenant_revoke(%s, 1)", (reader,))
            conn.execute(f'DROP ROLE "{reader}"')


@pytest.mark.parametrize("value", ["Mars/Olympus", "+02", "Europe/Berlin; DROP TABLE calls", "42"])
def test_a_setting_that_is_no_zone_name_is_refused(laravel_in_berlin: str, value: str) -> None:
    with (
        psycopg.connect(laravel_in_berlin, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InvalidParameterValue, match="app_time_zone"),
    ):
        conn.execute(
            "UPDATE guard.settings SET value = to_jsonb(%s::text) WHERE key = 'app_time_zone'",
            (value,),
        )


def test_verify_says_when_zoneless_columns_have_no_declared_zone(laravel_in_berlin: str) -> None:
    def verify_json() -> Any:
        result = CliRunner().invoke(
            main, ["--database-url", laravel_in_berlin, "db", "verify", "--json"]
        )
        return json.loads(result.stdout)

    assert verify_json()["columns_without_declared_zone"] == []
    with psycopg.connect(laravel_in_berlin, autocommit=True) as conn:
        conn.execute("UPDATE guard.settings SET value = '\"\"' WHERE key = 'app_time_zone'")
    undeclared = verify_json()["columns_without_declared_zone"]
    assert "calls.created_at" in undeclared and "appointments.starts_at" in undeclared
    result = CliRunner().invoke(main, ["--database-url", laravel_in_berlin, "db", "apply"])
    assert "NOTE: " in result.output and "app_time_zone" in result.output
