"""`guard db verify` is silent on a fresh database and names each kind of drift."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from guard.resources import sql_dir
from guard.schema.drift import LEGACY_ROW_TRIGGERS, Difference
from guard.schema.migrate import Migrator
from guard.schema.verify import shipped_role_grants_query, verify
from tests.support.migrations import shipped_migrations
from tests.support.queries import execute, text_on


def _kinds(differences: list[Difference]) -> set[tuple[str, str]]:
    return {(d.kind, d.subject) for d in differences}


def test_fresh_database_has_no_drift(db_url: str) -> None:
    assert verify(db_url) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(
            "DROP INDEX guard.alerts_first_seen_at_idx",
            ("missing", "index alerts_first_seen_at_idx on guard.alerts"),
            id="missing-index",
        ),
        pytest.param(
            "CREATE TABLE guard.scratch (id int)",
            ("extra", "table guard.scratch"),
            id="extra-table",
        ),
        pytest.param(
            "CREATE FUNCTION guard.helper() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            ("extra", "function guard.helper()"),
            id="extra-function",
        ),
        pytest.param(
            "CREATE DOMAIN guard.stray AS int",
            ("extra", "domain guard.stray"),
            id="extra-domain",
        ),
        pytest.param(
            "ALTER TABLE guard.alerts DROP CONSTRAINT alerts_resolved_has_time",
            ("missing", "constraint alerts_resolved_has_time on guard.alerts"),
            id="dropped-constraint",
        ),
        pytest.param(
            "ALTER TABLE guard.settings DISABLE TRIGGER settings_touch_updated_at",
            ("disabled", "trigger settings_touch_updated_at on guard.settings"),
            id="disabled-trigger",
        ),
        pytest.param(
            # (not a phone number column: guard.calls_report depends on those)
            "ALTER TABLE public.calls DROP COLUMN booking_details",
            ("missing", "column public.calls.booking_details"),
            id="missing-column",
        ),
        pytest.param(
            "DELETE FROM guard.settings WHERE key = 'grace_period_seconds'",
            ("missing", "setting grace_period_seconds"),
            id="missing-setting",
        ),
        pytest.param(
            "DELETE FROM guard.role_grants WHERE object_name = 'guard.check_call(bigint)'",
            ("missing", "role grant application FUNCTION guard.check_call(bigint) {EXECUTE}"),
            id="missing-role-grant",
        ),
        # The kinds of drift whose catalog text differs between server versions (deparsed view
        # text on 16+, NOT NULL as a constraint on 18): still reported on each version.
        pytest.param(
            "DO $$ BEGIN EXECUTE format('CREATE OR REPLACE VIEW guard.validation_latency_daily"
            " AS %s', replace(pg_get_viewdef('guard.validation_latency_daily'::regclass),"
            " 'FROM guard.validation_metrics m', 'FROM guard.validation_metrics m WHERE m.ok'));"
            " END $$",
            ("changed", "view guard.validation_latency_daily"),
            id="changed-view",
        ),
        pytest.param(
            "ALTER TABLE guard.alerts ALTER COLUMN severity DROP NOT NULL",
            ("changed", "column guard.alerts.severity"),
            id="dropped-not-null",
        ),
        pytest.param(
            "ALTER TABLE public.calls ALTER COLUMN created_at DROP NOT NULL",
            ("changed", "column public.calls.created_at"),
            id="dropped-not-null-booking-table",
        ),
        pytest.param(
            "DROP POLICY tenant_isolation ON guard.alerts",
            ("missing", "policy tenant_isolation on guard.alerts"),
            id="dropped-policy",
        ),
    ],
)
def test_each_kind_of_drift_is_named(
    db_url: str, statement: str, expected: tuple[str, str]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(statement)
    assert expected in _kinds(verify(db_url))


def test_changed_function_body_is_shown_as_a_diff(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """CREATE OR REPLACE FUNCTION guard.setting(setting_key text) RETURNS jsonb
               LANGUAGE plpgsql STABLE SET search_path = pg_catalog, guard
               AS $$ BEGIN RETURN NULL; END; $$"""
        )
    changed = [d for d in verify(db_url) if d.subject == "function guard.setting(setting_key text)"]
    assert [d.kind for d in changed] == ["changed"]
    assert any(line.startswith("+") and "RETURN NULL" in line for line in changed[0].diff)


def test_constraint_left_not_valid(db_url: str) -> None:
    execute(
        db_url,
        "ALTER TABLE guard.alerts DROP CONSTRAINT alerts_resolved_has_time",
        (
            "ALTER TABLE guard.alerts ADD CONSTRAINT alerts_resolved_has_time"
            " CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)) NOT VALID"
        ),
    )
    differences = verify(db_url)
    assert _kinds(differences) == {
        ("not_valid", "constraint alerts_resolved_has_time on guard.alerts")
    }


def test_edited_migration(pg_cluster_db_with_copied_migrations: tuple[str, Path]) -> None:
    url, directory = pg_cluster_db_with_copied_migrations
    edited = directory / "0004_guard_tables.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    assert ("edited", "migration 0004_guard_tables") in _kinds(verify(url, directory))
    with Migrator(url, directory) as migrator:
        labels = {s.id: s.label for s in migrator.states()}
    assert labels["0004_guard_tables"] == "applied, EDITED since"
    assert labels["0001_guard_schema"] == "applied, checksum ok"


def test_pending_migration_is_drift(pg_cluster_db_with_copied_migrations: tuple[str, Path]) -> None:
    url, directory = pg_cluster_db_with_copied_migrations
    (directory / "0999_more.sql").write_text("CREATE TABLE guard.more (id int);\n")
    assert ("pending", "migration 0999_more") in _kinds(verify(url, directory))


@pytest.fixture
def pg_cluster_db_with_copied_migrations(db_url: str, tmp_path: Path) -> tuple[str, Path]:
    """A clone of the migrated template (built from the same files) and a copy of the
    migrations a test may edit."""
    directory = shipped_migrations(tmp_path)
    with Migrator(db_url, directory) as migrator:
        assert migrator.apply() == [], "the template has every migration of the copy"
    return db_url, directory


def test_a_cast_in_a_view_is_drift_on_a_database_booking_guard_created(db_url: str) -> None:
    """The leniency for the application's column types on adopted tables must not hide a
    changed view on a database whose tables Booking Guard created."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE VIEW guard.check_call_without_direction"
            " WITH (security_invoker = true) AS"
            " SELECT 'call_without_direction'::text AS check_id, c.company_id,"
            " 'call'::text AS entity_type, c.id AS entity_id, c.id AS call_id,"
            " 'medium'::text AS severity, c.created_at AS observed_at,"
            " jsonb_build_object('direction', c.direction) AS detail,"
            " 'I1_call_direction'::text AS rule_id"
            " FROM public.calls AS c WHERE NOT coalesce((c.direction)::varchar IN"
            " ('inbound', 'outbound'), false)"
        )
    assert ("changed", "view guard.check_call_without_direction") in _kinds(verify(db_url))


def _make_checks_not_valid(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The state of an adopted database before `guard db validate`: the CHECKs NOT VALID."""
    for (name,) in conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'public.calls'::regclass"
        " AND conname IN ('guard_calls_direction_check', 'guard_calls_customer_link_check')"
    ).fetchall():
        definition = text_on(
            conn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'public.calls'::regclass AND conname = %s",
            (name,),
            str(name),
        )
        conn.execute(f"ALTER TABLE public.calls DROP CONSTRAINT {name}")
        conn.execute(f"ALTER TABLE public.calls ADD CONSTRAINT {name} {definition} NOT VALID")


def test_legacy_row_triggers_belong_to_not_valid_checks(db_url: str) -> None:
    """While a CHECK is NOT VALID its legacy-row trigger is expected (the CHECK is the drift);
    missing then, it is named; left over once the CHECK is valid, it is named too."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        _make_checks_not_valid(conn)
        created: dict[str, str] = dict(
            conn.execute("SELECT trigger_name, action FROM guard.sync_legacy_triggers()").fetchall()
        )
        assert set(created) == set(LEGACY_ROW_TRIGGERS["public.calls"]), (
            "guard.sync_legacy_triggers and guard/schema/drift.py must know the same triggers"
        )
        assert set(created.values()) == {"created"}
        kinds = {(d.kind, d.subject) for d in verify(db_url)}
        assert kinds == {
            ("not_valid", "constraint guard_calls_customer_link_check on public.calls"),
            ("not_valid", "constraint guard_calls_direction_check on public.calls"),
        }

        conn.execute("DROP TRIGGER guard_calls_normalise_legacy_link ON public.calls")
        missing = [d for d in verify(db_url) if d.kind == "missing"]
        assert [d.subject for d in missing] == [
            "trigger guard_calls_normalise_legacy_link on public.calls"
        ]
        assert "guard.sync_legacy_triggers()" in missing[0].detail

        conn.execute("ALTER TABLE public.calls VALIDATE CONSTRAINT guard_calls_direction_check")
        left_over = [d for d in verify(db_url) if d.kind == "extra"]
        assert [d.subject for d in left_over] == [
            "trigger guard_calls_normalise_legacy_direction on public.calls"
        ]
        assert "left over" in left_over[0].detail


def test_the_shipped_role_grants_read_as_a_query_are_the_rows_the_file_writes(db_url: str) -> None:
    """verify reads sql/grants/role_grants.sql's rows without running it (a standby is
    read-only): the query must give exactly the rows the file writes."""
    text = (sql_dir() / "grants" / "role_grants.sql").read_text()
    with psycopg.connect(db_url) as conn:
        read = sorted(conn.execute(shipped_role_grants_query(text)).fetchall())
        with conn.transaction(force_rollback=True):
            conn.execute(text.encode())
            written = sorted(
                conn.execute(
                    "SELECT format('%s %s %s %s', role_kind, object_type, object_name,"
                    " privileges), columns FROM guard.role_grants"
                ).fetchall()
            )
    assert len(written) > 50
    assert read == written


def test_a_role_grants_file_of_another_form_is_refused_not_misread() -> None:
    text = (sql_dir() / "grants" / "role_grants.sql").read_text()
    with pytest.raises(ValueError, match="not one DELETE and INSERT statements"):
        shipped_role_grants_query(text + "\nUPDATE guard.role_grants SET columns = NULL;\n")
