"""Migration 0031_rules_and_checks on a database in use: open alerts keep their identity (the
next detection pass bumps the same alert instead of opening a second one), a check an operator
switched off stays off, the commit-time flag-correction alerts move to their check, and stored
daily reports are counted again per rule with the former per-check counts kept in by_check. Its
rollback gives every one of them back as it was."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from guard.errors import GuardError
from guard.resources import migrations_dir
from guard.schema.migrate import Migrator
from tests.support.queries import execute

BEFORE, MIGRATION = "0030_appointment_triggers_caller_search_path", "0031_rules_and_checks"

OLD_BY_RULE = {
    "call_without_direction": 2,
    "recent_booking_failure": 3,
    "booking_failure_anomaly": 1,
    "I3_appointment_flags": 1,
}
# top_issues as guard.daily_report wrote it before 0031: the largest per (detection) rule, with
# that rule's severity and description
OLD_TOP_ISSUES = """
SELECT jsonb_agg(
    jsonb_build_object(
        'rule_id', e.key, 'count', e.value, 'severity', r.severity, 'description', r.description
    )
    ORDER BY (e.value #>> '{}')::int DESC, e.key
)
FROM jsonb_each(%s::jsonb) AS e LEFT JOIN guard.rules AS r ON e.key = r.id
"""


def _seed(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
    with conn.transaction():
        # a phantom booking as a legacy load left it: detection finds it on every pass
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status,"
            " session_outcome, appointment_made, created_at, updated_at)"
            " VALUES (1, 1, 'c1', 'inbound', 'unlinked', 'appointment_booked', TRUE,"
            "         now() - interval '10 minutes', now() - interval '10 minutes')"
        )
    conn.execute("SELECT count(*) FROM guard.detect()")
    conn.execute(
        "INSERT INTO guard.alerts (fingerprint, rule_id, company_id, entity_type, entity_id,"
        " severity, message, details, status, resolved_at, resolution)"
        " VALUES ('I3_appointment_flags:company:1:corrected_writes', 'I3_appointment_flags', 1,"
        "         'company', 1, 'medium', 'corrected', '{}', 'open', NULL, NULL),"
        "        ('I3_appointment_flags:company:1:corrected_writes', 'I3_appointment_flags', 1,"
        "         'company', 1, 'medium', 'corrected', '{}', 'resolved', now(), 'superseded')"
    )
    conn.execute("UPDATE guard.rules SET enabled = FALSE WHERE id = 'recent_booking_failure'")
    conn.execute(
        "INSERT INTO guard.daily_reports (report_date, company_id, total_calls,"
        " inconsistent_calls, inconsistency_rate_pct, auto_corrected, manual_reviews,"
        " open_review_items, by_rule, top_issues)"
        f" VALUES ('2026-01-10', 1, 10, 5, 50, 1, 1, 0, %s, ({OLD_TOP_ISSUES})),"
        "        ('2026-01-11', 1, 10, 0, 0, 0, 0, 0, '{}', '[]')",
        (Jsonb(OLD_BY_RULE), Jsonb(OLD_BY_RULE)),
    )


def _alerts(conn: psycopg.Connection[Any], column: str) -> list[tuple[Any, ...]]:
    # column is one of two names this module passes
    query = f"SELECT id, {column}, fingerprint, status, occurrences FROM guard.alerts ORDER BY id"
    return conn.execute(query).fetchall()


def _reports(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT report_date::text, by_rule, top_issues FROM guard.daily_reports ORDER BY 1"
    ).fetchall()


def test_open_alerts_settings_and_reports_survive_the_migration_and_its_rollback(
    empty_db_url: str,
) -> None:
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply(to=BEFORE)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        _seed(conn)
        alerts_before = _alerts(conn, "rule_id")
        reports_before = _reports(conn)
    phantom_id = next(a[0] for a in alerts_before if a[1] == "booked_without_appointment")

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.apply(to=MIGRATION) == [MIGRATION]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert [(a[0], a[1], a[2], a[3]) for a in _alerts(conn, "check_id")] == [
            (phantom_id, "booked_without_appointment", "booked_without_appointment:call:1", "open"),
            (
                phantom_id + 1,
                "flags_corrected_on_write",
                "flags_corrected_on_write:company:1",
                "open",
            ),
            (
                phantom_id + 2,
                "flags_corrected_on_write",
                "flags_corrected_on_write:company:1",
                "resolved",
            ),
        ]
        # the next pass knows the open alert: bumped, not opened again
        summary = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT check_id, rule_id, offending, opened, repeated FROM guard.detect()"
            ).fetchall()
        }
        assert summary["booked_without_appointment"] == ("I4_booked_outcome", 1, 0, 1)
        assert "recent_booking_failure" not in summary, "a check switched off stays off"
        assert conn.execute(
            "SELECT enabled, rule_id FROM guard.checks WHERE id = 'recent_booking_failure'"
        ).fetchall() == [(False, "I7_booking_failures")]
        # refresh_call_flags raises the flag-correction alert under its check now: same alert
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message) VALUES ('flags_corrected_on_write:company:1',"
            " 'flags_corrected_on_write', 1, 'company', 1, 'medium', 'x')"
            " ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING"
        )
        assert conn.execute(
            "SELECT count(*) FROM guard.alerts WHERE check_id = 'flags_corrected_on_write'"
            " AND status = 'open'"
        ).fetchall() == [(1,)]

        reports = conn.execute(
            "SELECT report_date::text, by_rule, by_check, top_issues FROM guard.daily_reports"
            " ORDER BY 1"
        ).fetchall()
        _, by_rule, by_check, top_issues = reports[0]
        assert by_rule == {
            "I1_call_direction": 2,
            "I7_booking_failures": 4,
            "I3_appointment_flags": 1,
        }
        assert by_check == {
            "call_without_direction": 2,
            "recent_booking_failure": 3,
            "booking_failure_anomaly": 1,
            "flags_corrected_on_write": 1,
        }
        assert [(i["rule_id"], i["count"], i["severity"]) for i in top_issues] == [
            ("I7_booking_failures", 4, "high"),
            ("I1_call_direction", 2, "medium"),
            ("I3_appointment_flags", 1, "high"),
        ]
        assert reports[1][1:] == ({}, {}, []), "a day without alerts stays empty"
        assert conn.execute(
            "SELECT top_rule FROM guard.daily_report_view WHERE report_date = '2026-01-10'"
        ).fetchall() == [("I7_booking_failures",)]

    with Migrator(empty_db_url, migrations_dir()) as migrator:
        assert migrator.rollback() == [MIGRATION]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        after = _alerts(conn, "rule_id")
        # the pass after the migration bumped the phantom's alert once; nothing else moved
        assert [a if a[0] != phantom_id else (*a[:4], a[4] - 1) for a in after] == alerts_before
        assert _reports(conn) == reports_before
        assert conn.execute(
            "SELECT enabled, check_view FROM guard.rules WHERE id = 'recent_booking_failure'"
        ).fetchall() == [(False, "check_recent_booking_failure")]


def test_a_detection_rule_of_the_dbas_own_stops_the_migration_with_a_clear_error(
    empty_db_url: str,
) -> None:
    """Its view returns rule_id where detection now reads check_id: carried over, it would stop
    every detection pass; dropped, its alerts would silently end."""
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        migrator.apply(to=BEFORE)
    execute(
        empty_db_url,
        "CREATE VIEW guard.check_late_calls AS SELECT * FROM guard.check_recent_booking_failure",
        (
            "INSERT INTO guard.rules (id, invariant, severity, description, remedy, check_view)"
            " VALUES ('late_calls', 'I7', 'low', 'mine', 'report', 'check_late_calls')"
        ),
    )
    with Migrator(empty_db_url, migrations_dir()) as migrator:
        with pytest.raises(
            GuardError, match="detection rules Booking Guard does not know: late_calls"
        ):
            migrator.apply()
        pending = [s.id for s in migrator.states() if not s.applied]
        # Later migrations are pending too; the first pending is still this one.
        assert pending[:1] == [MIGRATION], "nothing of it was applied"
