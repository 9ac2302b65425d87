"""Adopting an existing database as the original Laravel application created it: varchar(255),
timestamp(0) without time zone, json, columns missing. The migrations keep every row and type,
add only what is missing, never rewrite the table, and roll back to exactly the original."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devtools.legacy_schema import LEGACY_SCHEMA
from guard.errors import first_line
from guard.schema.migrate import Migrator
from guard.schema.validate import validate
from guard.schema.verify import verify
from tests.support.queries import execute, fetch_all

GUARD_CONSTRAINTS = {
    ("calls", "guard_calls_direction_check"),
    ("calls", "guard_calls_customer_link_check"),
    ("appointments", "guard_appointments_company_required"),
    ("appointments", "guard_appointments_call_company_fkey"),
}

FINGERPRINT = """
SELECT
    (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM calls AS c),
    (SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) FROM appointments AS a)
"""

COLUMN_TYPES = """
SELECT table_name, column_name, data_type, character_maximum_length, datetime_precision
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name IN ('companies', 'customers', 'calls', 'appointments')
ORDER BY table_name, column_name
"""


@pytest.fixture
def legacy_db(empty_db_url: str) -> Iterator[str]:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA.encode())
        conn.execute("ANALYZE")  # as autovacuum has long done on the legacy database in use
    yield empty_db_url


def _one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row


@pytest.mark.history
def test_migrations_adopt_a_legacy_database(legacy_db: str) -> None:
    with psycopg.connect(legacy_db) as conn:
        before_rows = _one(conn, FINGERPRINT)
        before_types = conn.execute(COLUMN_TYPES).fetchall()
        before_files = conn.execute(
            "SELECT relname, relfilenode FROM pg_class"
            " WHERE relname IN ('calls', 'appointments') ORDER BY relname"
        ).fetchall()

    with Migrator(legacy_db) as migrator:
        migrator.apply()

    with psycopg.connect(legacy_db) as conn:
        # The application's rows and column types are untouched (row text covers old columns
        # only because the new columns are appended at the end: compare the old prefix).
        after_types = conn.execute(COLUMN_TYPES).fetchall()
        assert set(before_types) <= set(after_types)
        added = {(t, c) for t, c, *_ in after_types} - {(t, c) for t, c, *_ in before_types}
        assert ("calls", "direction") in added and ("appointments", "ends_at") in added
        assert ("calls", "transcript") not in added
        assert _one(conn, "SELECT count(*) FROM calls") == (20000,)
        old_calls = _one(
            conn,
            "SELECT md5(string_agg(concat_ws('|', id, company_id, retell_call_id, from_number,"
            " session_outcome, appointment_made, booking_id, booking_details::text, transcript,"
            " created_at), ',' ORDER BY id)) FROM calls",
        )
        # No table rewrite: the tables keep their files (adding columns is catalog-only).
        after_files = conn.execute(
            "SELECT relname, relfilenode FROM pg_class"
            " WHERE relname IN ('calls', 'appointments') ORDER BY relname"
        ).fetchall()
        assert after_files == before_files
        # Booking Guard's indexes were built on the legacy tables.
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename IN ('calls', 'appointments')"
            ).fetchall()
        }
        assert {"guard_calls_created_at_idx", "guard_appointments_call_id_idx"} <= indexes
        adopted = {
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM guard.baseline_objects"
                " WHERE column_name = '' AND NOT created_by_guard"
            ).fetchall()
        }
        assert adopted == {"companies", "customers", "calls", "appointments"}

    # Adopted tables keep their own types: verify compares only what Booking Guard owns there,
    # and says that its constraints are not validated yet (the staged step).
    assert {(d.kind, d.subject) for d in verify(legacy_db)} == {
        ("not_valid", f"constraint {name} on public.{table}") for table, name in GUARD_CONSTRAINTS
    }

    with Migrator(legacy_db) as migrator:
        migrator.rollback(all_=True)
    with psycopg.connect(legacy_db) as conn:
        assert conn.execute(COLUMN_TYPES).fetchall() == before_types
        assert _one(conn, FINGERPRINT) == before_rows
        assert _one(conn, "SELECT to_regclass('public.services')") == (None,)
        assert _one(conn, "SELECT to_regnamespace('guard')") == (None,)
        assert old_calls == _one(
            conn,
            "SELECT md5(string_agg(concat_ws('|', id, company_id, retell_call_id, from_number,"
            " session_outcome, appointment_made, booking_id, booking_details::text, transcript,"
            " created_at), ',' ORDER BY id)) FROM calls",
        )


def test_validate_reconciles_legacy_rows_then_enforces(legacy_db_url: str) -> None:
    legacy_db = legacy_db_url  # the legacy load after `guard db apply`: the session's clone
    with psycopg.connect(legacy_db, autocommit=True) as conn:
        # New writes are checked at once, even before validation.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE calls SET direction = 'sideways' WHERE id = 1")
        stages: dict[str, str] = dict(conn.execute("SELECT id, stage FROM guard.rules").fetchall())
        assert stages["I1_call_direction"] == "correct"

    lines: list[str] = []
    report = validate(legacy_db, batch_size=3000, progress=lines.append, pause_ratio=0)

    assert report.complete, report.constraints
    assert report.calls_scanned == 20000
    assert report.corrected["I1_call_direction"] == 20000, "every legacy call lacked a direction"
    assert report.corrected["I2_customer_link"] == 20000, "no legacy call had a link status"
    # Every booked legacy call lacked the appointment link columns (added by the migration).
    assert report.corrected["I3_appointment_flags"] == 20000 // 3
    assert any("reconciled ids up to" in line for line in lines), "progress is shown"
    # The legacy-row triggers existed while the CHECKs were NOT VALID; valid now, they go.
    assert report.legacy_triggers == {
        "guard_calls_normalise_legacy_direction": "dropped",
        "guard_calls_normalise_legacy_link": "dropped",
    }
    assert verify(legacy_db) == []
    with psycopg.connect(legacy_db) as conn:
        stages = dict(conn.execute("SELECT id, stage FROM guard.rules").fetchall())
        assert stages["I1_call_direction"] == stages["I5_tenant_link"] == "enforce"
        not_null = conn.execute(
            "SELECT attnotnull FROM pg_attribute"
            " WHERE attrelid = 'calls'::regclass AND attname = 'direction'"
        ).fetchone()
        assert not_null == (True,)
        soft_deleted_only = _one(
            conn,
            "SELECT count(*) FROM calls AS c WHERE c.appointment_made AND NOT EXISTS ("
            " SELECT FROM appointments AS a"
            " WHERE a.call_id = c.id AND a.deleted_at IS NULL)",
        )
        assert soft_deleted_only == (0,)
        # ... and those whose only appointment was soft-deleted (ids divisible by 30) no longer
        # claim one; the audit says so.
        unbooked = _one(
            conn,
            "SELECT count(*) FROM guard.correction_audit WHERE rule_id = 'I3_appointment_flags'"
            " AND (before ->> 'appointment_made')::boolean"
            " AND NOT (after ->> 'appointment_made')::boolean",
        )
        assert unbooked == (20000 // 30,)
        linked = _one(
            conn,
            "SELECT count(*) FROM calls"
            " WHERE appointment_made AND appointment_link_status = 'linked'"
            " AND appointment_linked_at IS NOT NULL",
        )
        assert linked == (20000 // 3 - 20000 // 30,)


def test_validate_leaves_undecidable_rows_for_a_person(legacy_db: str) -> None:
    execute(
        legacy_db,
        "ALTER TABLE calls ADD COLUMN direction varchar(255)",
        "UPDATE calls SET direction = 'sideways' WHERE id = 7",
    )
    with Migrator(legacy_db) as migrator:
        migrator.apply()
    report = validate(legacy_db, pause_ratio=0)
    # The row is left whole (fixing its link would need an UPDATE the direction check refuses),
    # so both of its constraints stay NOT VALID, and it is counted for review.
    failed = {(r.table, r.constraint) for r in report.constraints if not r.validated}
    assert failed == {
        ("calls", "guard_calls_direction_check"),
        ("calls", "guard_calls_customer_link_check"),
    }
    assert report.corrected["needs_review"] == 1
    assert report.legacy_triggers == {}, "both CHECKs stay NOT VALID: their triggers stay"
    with psycopg.connect(legacy_db) as conn:
        row = _one(conn, "SELECT direction, customer_link_status FROM calls WHERE id = 7")
        assert row == ("sideways", None)
        stage = _one(conn, "SELECT stage FROM guard.rules WHERE id = 'I1_call_direction'")
        assert stage == ("correct",)


def test_the_application_can_update_old_rows_before_validate(legacy_db: str) -> None:
    """Between `guard db apply` and `guard db validate` the guard CHECKs are NOT VALID, yet
    PostgreSQL checks every new row version against them: the application's update of any column
    of an old row that breaks I1 or I2 must not fail. The row is normalised as reconcile would;
    a row reconcile leaves for a person (an unknown direction) still fails, as on insert."""
    with psycopg.connect(legacy_db, autocommit=True) as conn:
        # old rows as the legacy application left them: a customer without any link details
        conn.execute("UPDATE calls SET customer_id = 1 WHERE id = 2")
    with Migrator(legacy_db) as migrator:
        migrator.apply()
    not_valid = fetch_all(
        legacy_db,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'calls'::regclass"
        " AND conname IN ('guard_calls_direction_check', 'guard_calls_customer_link_check')"
        " AND NOT convalidated ORDER BY 1",
    )
    with psycopg.connect(legacy_db, autocommit=True) as conn:
        old = conn.execute(
            "SELECT id, direction, customer_link_status FROM calls WHERE id IN (1, 2) ORDER BY id"
        ).fetchall()
        for call_id in (1, 2):
            conn.execute("UPDATE calls SET status = 'completed' WHERE id = %s", (call_id,))
        updated = conn.execute(
            "SELECT id, status, direction, customer_link_status, customer_link_method IS NOT NULL,"
            " customer_linked_at IS NOT NULL FROM calls WHERE id IN (1, 2) ORDER BY id"
        ).fetchall()
        conn.execute("UPDATE calls SET direction = NULL WHERE id = 3")  # normalised: inbound
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE calls SET direction = 'sideways' WHERE id = 3")
        third = _one(conn, "SELECT direction FROM calls WHERE id = 3")
    assert not_valid == [("guard_calls_customer_link_check",), ("guard_calls_direction_check",)]
    assert old == [(1, None, None), (2, None, None)], "the old rows break I1 and I2"
    assert updated == [
        (1, "completed", "inbound", "unlinked", False, False),
        (2, "completed", "inbound", "linked", True, True),
    ]
    assert third == ("inbound",)


@pytest.mark.slow  # about a minute or more: the slow group (docs/testing.md)
def test_old_rows_stay_writable_at_every_level_of_apply_and_rollback(legacy_db: str) -> None:
    """Each migration commits on its own. From 0006_invariants (the I1/I2 CHECKs, NOT VALID)
    until 0021_legacy_rows_on_update (normalisers on any update), an update of an old row's
    status was refused: the bridge (guard/schema/bridges.py) closes that gap. Walked level by level
    up and down: at every committed level an update of an old row that breaks I1 and I2 (with
    and without a customer) passes, and the bridge exists exactly between the two."""
    with psycopg.connect(legacy_db, autocommit=True) as conn:
        conn.execute("UPDATE calls SET customer_id = 1 WHERE id % 2 = 0")
    with Migrator(legacy_db) as migrator:
        order = [m.id for m in migrator.migrations()]
    opened, closed = order.index("0006_invariants"), order.index("0021_legacy_rows_on_update")
    refused: list[tuple[str, str]] = []
    bridged: dict[str, bool] = {}
    row = iter(range(1, 20001))

    def write_old_rows(level: str) -> None:
        with psycopg.connect(legacy_db, autocommit=True) as conn:
            bridged[level] = _one(
                conn,
                "SELECT count(*) = 2 FROM pg_trigger WHERE tgrelid = to_regclass('public.calls')"
                " AND tgname LIKE 'guard\\_calls\\_bridge\\_%'",
            )[0]
            for call_id in (next(row), next(row)):  # one without a customer, one with
                try:
                    conn.execute("UPDATE calls SET status = 'completed' WHERE id = %s", (call_id,))
                except psycopg.errors.CheckViolation as error:
                    refused.append((level, first_line(error)))

    for level in order[opened:]:
        with Migrator(legacy_db) as migrator:
            migrator.apply(to=level)
        write_old_rows(level)
    for level in reversed(order[opened:-1]):
        with Migrator(legacy_db) as migrator:
            migrator.rollback(to=level)
        write_old_rows(f"back to {level}")
    with Migrator(legacy_db) as migrator:  # 0006's rollback drops what the bridge runs
        migrator.rollback(to=order[opened - 1])

    assert refused == []
    between = set(order[opened:closed])
    assert {level for level, present in bridged.items() if present} == between | {
        f"back to {level}" for level in between
    }
    with psycopg.connect(legacy_db) as conn:
        normalised = conn.execute(
            "SELECT count(*) FILTER (WHERE direction = 'inbound'),"
            " count(*) FILTER (WHERE customer_link_status IN ('linked', 'unlinked'))"
            " FROM calls WHERE status = 'completed'"
        ).fetchone()
        written = _one(conn, "SELECT count(*) FROM calls WHERE status = 'completed'")[0]
        left = _one(conn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'guard%'")[0]
    assert left == 0
    assert written == 2 * len(bridged)
    assert normalised == (written, written)
