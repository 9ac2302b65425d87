"""Your own check (docs/dba.md, "Your own checks"): a view in schema guard plus one
`guard.register_check` call runs in `guard check`, `check_call`, alerts, the daily report and the
metrics, and `guard db verify` counts it as known, before and after an upgrade (a rollback to the
last release and an apply). What register_check refuses is in
pgtests/detection/register_check.sql."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from click.testing import CliRunner
from prometheus_client import generate_latest

from guard.cli import main
from guard.ops.metrics import GuardCollector, registry_for
from guard.schema.migrate import Migrator
from guard.schema.verify import verify
from tests.support.queries import fetch_all

RELEASE_0_2_0_LAST = "0031_rules_and_checks"

# The example of docs/dba.md, "Your own checks", as a DBA copies it: a rule of their own, the
# view, the registration (the docs and this test cannot drift apart).
_DOC = (Path(__file__).resolve().parents[2] / "docs" / "dba.md").read_text()
_EXAMPLE = _DOC.split("## Your own checks", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
OWN_RULE, OWN_VIEW, REGISTER = (part.strip() for part in _EXAMPLE.split(";\n\n"))


def _add_own_check(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute("INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1')")
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at)"
            " VALUES (1, 1, 1, 'uid-1', NULL), (2, 1, NULL, 'uid-2', now() + interval '1 day')"
        )
        with conn.transaction():
            conn.execute(OWN_RULE)
            conn.execute(OWN_VIEW)
            conn.execute(REGISTER)


def _own_check_rows(url: str) -> list[tuple[object, ...]]:
    return fetch_all(
        url,
        "SELECT id, rule_id, check_view, enabled FROM guard.checks"
        " WHERE id = 'appointment_without_start'",
    )


def test_an_unregistered_view_is_drift_and_a_registered_one_is_known(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(OWN_RULE)
        conn.execute(OWN_VIEW)
        assert [(d.kind, d.subject) for d in verify(db_url)] == [
            ("extra", "view guard.check_appointment_without_start")
        ]
        conn.execute(REGISTER)
    assert verify(db_url) == []


def test_an_own_check_runs_in_guard_check_check_call_alerts_report_and_metrics(db_url: str) -> None:
    _add_own_check(db_url)

    result = CliRunner().invoke(main, ["--database-url", db_url, "check", "--json"])
    found = {row["check"]: (row["rule"], row["offending"]) for row in json.loads(result.stdout)}
    assert found["appointment_without_start"] == ("calendar_times", 1)

    with psycopg.connect(db_url, autocommit=True) as conn:
        alert = conn.execute(
            "SELECT entity_type, entity_id, severity, status FROM guard.alerts"
            " WHERE check_id = 'appointment_without_start'"
        ).fetchall()
        assert alert == [("appointment", 1, "low", "open")]
        report = conn.execute(
            "SELECT by_check, by_rule FROM guard.compute_daily_report("
            "(now() AT TIME ZONE 'UTC')::date) WHERE company_id = 1"
        ).fetchall()
        assert [
            (r[0].get("appointment_without_start"), r[1].get("calendar_times")) for r in report
        ] == [(1, 1)], "the day's report counts its alert under the check and its rule"
        conn.execute("UPDATE appointments SET starts_at = now() WHERE id = 1")
        by_call = conn.execute(
            "SELECT offending, resolved FROM guard.check_call(1)"
            " WHERE check_id = 'appointment_without_start'"
        ).fetchall()
        assert by_call == [(0, 1)], "check_call runs it for the call and resolves the alert"

    scrape = generate_latest(registry_for(GuardCollector(db_url, cache_interval_s=0))).decode()
    assert (
        'guard_alerts_open{check_id="appointment_without_start",rule_id="calendar_times",'
        'severity="low"} 0.0' in scrape
    ), "an enabled check is exported, 0 once resolved"


def test_an_own_check_survives_an_upgrade_and_stays_known(db_url: str) -> None:
    _add_own_check(db_url)
    with Migrator(db_url) as migrator:
        migrator.rollback(to=RELEASE_0_2_0_LAST)
    with Migrator(db_url) as migrator:
        migrator.apply()
    assert _own_check_rows(db_url) == [
        ("appointment_without_start", "calendar_times", "check_appointment_without_start", True)
    ]
    assert verify(db_url) == []
    result = CliRunner().invoke(main, ["--database-url", db_url, "check", "--json"])
    found = {row["check"]: row["offending"] for row in json.loads(result.stdout)}
    assert found["appointment_without_start"] == 1
