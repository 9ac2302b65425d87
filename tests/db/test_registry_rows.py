"""Booking Guard's own registry rows (settings, rules, checks, jobs) are applied from sql/data/
with the definitions: idempotent upserts that bring back what Booking Guard ships and never
touch what an operator owns; a new row needs no migration; a rollback to a release takes away
the rows data files created that the release does not define."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from guard.resources import sql_dir
from guard.schema import catalog, definitions
from guard.schema.catalog import REGISTRIES
from guard.schema.migrate import Migrator
from tests.support.migrations import apply_every_definition
from tests.support.postgres import Cluster

RELEASE_0_2_0_LAST = "0031_rules_and_checks"
# registry -> the columns an operator owns: a data file sets them only when it creates a row.
OPERATOR_COLUMNS = {
    "checks": ("enabled", "warn_above", "error_above", "threshold_unit", "sweep"),
    "rules": ("mode", "stage", "enabled"),
    "jobs": ("schedule", "interval_seconds", "enabled"),
    "settings": ("value", "value_type"),
}

# Every operator-owned column set to a value no data file writes.
_SET_BY_OPERATOR = {
    "checks": "UPDATE guard.checks SET enabled = NOT enabled, warn_above = 7, error_above = 9,"
    " threshold_unit = 'rate_pct', sweep = NOT sweep",
    # (never observe: 0120_i4_rollout_by_company moves I4's observe, its old shipped stage, to
    # correct, and cannot tell it from an operator's; a rule with constraints has the stage they
    # give it, which every apply reads again)
    "rules": "UPDATE guard.rules SET enabled = NOT enabled,"
    " mode = CASE mode WHEN 'correct' THEN 'reject' ELSE 'correct' END,"
    " stage = CASE WHEN cardinality(constraint_names) > 0 THEN stage"
    " WHEN stage = 'enforce' THEN 'correct' ELSE 'enforce' END",
    "jobs": "UPDATE guard.jobs SET enabled = NOT enabled, schedule = '7 7 * * *',"
    " interval_seconds = interval_seconds + 60",
    # (app_time_zone takes zone names only: an operator's is one)
    "settings": "UPDATE guard.settings SET value = CASE"
    " WHEN key = 'app_time_zone' THEN to_jsonb('Europe/Berlin'::text)"
    " WHEN value_type = 'integer' THEN to_jsonb((value::text)::bigint + 1)"
    " WHEN value_type = 'number' THEN to_jsonb((value::text)::numeric + 0.5)"
    " WHEN value_type = 'boolean' THEN to_jsonb(NOT (value::text)::boolean)"
    " ELSE to_jsonb((value #>> '{}') || ',set-by-operator') END",
}


def _rows(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every registry row, whole (with its row version: a rewrite shows even with equal values)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for registry, (table, key) in REGISTRIES.items():
            rows = conn.execute(
                f"SELECT {key}::text, to_jsonb(t) || jsonb_build_object('xmin', t.xmin::text)"
                f" FROM {table} AS t"
            ).fetchall()
            found.update({(registry, str(k)): dict(row) for k, row in rows})
    return found


def _operator_values(rows: dict[tuple[str, str], dict[str, Any]]) -> dict[Any, Any]:
    return {
        (registry, key, column): row[column]
        for (registry, key), row in rows.items()
        for column in OPERATOR_COLUMNS[registry]
        if column in row  # (a release before the column was added)
        # (a rule with constraints has the stage they give it, not an operator's)
        and not (column == "stage" and row.get("constraint_names"))
    }


def _set_every_operator_column(url: str) -> None:
    with psycopg.connect(url) as conn:
        for statement in _SET_BY_OPERATOR.values():
            conn.execute(statement)


def _apply_everything(url: str, sql_directory: Path | None = None) -> definitions.Outcome:
    """`guard db apply` with every definition run, the data files included."""
    with psycopg.connect(url) as conn:
        return apply_every_definition(conn, definitions.checkout_definitions(sql_directory))


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "sql"
    shutil.copytree(sql_dir(), copy)
    return copy


def _add_to_manifest(sql_copy: Path, path: str, after: str) -> None:
    manifest = sql_copy / "manifest.txt"
    text = manifest.read_text()
    assert f"{after}\n" in text
    manifest.write_text(text.replace(f"{after}\n", f"{after}\n{path}\n", 1))


def test_the_operator_table_names_real_columns(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        for registry, columns in OPERATOR_COLUMNS.items():
            table = REGISTRIES[registry][0]
            found = {
                str(name)
                for (name,) in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped",
                    (table,),
                ).fetchall()
            }
            assert set(columns) <= found, f"{table} has no column {set(columns) - found}"


def test_every_data_file_runs_with_the_definitions(db_url: str) -> None:
    data_files = [d for d in definitions.checkout_definitions() if d.path.startswith("data/")]
    assert data_files and all(d.kind == "rows" and d.closing for d in data_files)
    with psycopg.connect(db_url) as conn:
        recorded = {
            str(path): str(kind)
            for path, kind in conn.execute(
                "SELECT path, kind FROM guard.definitions WHERE path LIKE 'data/%'"
            ).fetchall()
        }
    assert recorded == {d.path: "rows" for d in data_files}


def test_operator_columns_survive_two_applies_and_unchanged_rows_are_not_rewritten(
    db_url: str,
) -> None:
    _set_every_operator_column(db_url)
    before = _rows(db_url)
    changed = _operator_values(before)
    assert len(before) > 40, "the registries were not read"

    first = _apply_everything(db_url)
    second = _apply_everything(db_url)

    assert first.closing and second.closing, "the data files ran"
    after = _rows(db_url)
    assert _operator_values(after) == changed
    # The upserts write nothing where nothing differs: same row versions, same updated_at.
    assert after == before


def test_shipped_columns_come_back_and_operator_columns_stay(db_url: str) -> None:
    shipped = _registry_without_operator_columns(db_url)
    _set_every_operator_column(db_url)
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE guard.checks SET description = 'edited', severity = 'low'")
        conn.execute("UPDATE guard.rules SET description = 'edited', likely_cause = 'edited'")
        conn.execute("UPDATE guard.jobs SET command = 'SELECT 1', description = 'edited'")
        conn.execute("UPDATE guard.settings SET description = 'edited'")
    tuned = _operator_values(_rows(db_url))
    assert _registry_without_operator_columns(db_url) != shipped

    _apply_everything(db_url)

    assert _registry_without_operator_columns(db_url) == shipped
    assert _operator_values(_rows(db_url)) == tuned


def _new_check_files(sql_copy: Path) -> None:
    """A new detection check: one view file and one data file, no migration."""
    (sql_copy / "checks/guard.check_registry_probe.sql").write_text(
        "CREATE OR REPLACE VIEW guard.check_registry_probe WITH (security_invoker = true) AS\n"
        "SELECT c.company_id, 'call'::text AS entity_type, c.id::text AS entity_id,\n"
        "    '{}'::jsonb AS details\n"
        "FROM public.calls AS c WHERE FALSE;\n"
    )
    _add_to_manifest(
        sql_copy, "checks/guard.check_registry_probe.sql", "checks/guard.check_unknown_value.sql"
    )
    (sql_copy / "data/guard.checks.registry_probe.sql").write_text(
        "INSERT INTO guard.rules AS r (id, severity, description, remedy) VALUES\n"
        "('registry_probe', 'low', 'A probe rule.', 'report')\n"
        "ON CONFLICT (id) DO UPDATE SET description = excluded.description\n"
        "WHERE r.description IS DISTINCT FROM excluded.description;\n"
        "INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy, check_view)\n"
        "VALUES ('registry_probe', 'registry_probe', 'low', 'A probe.', 'report',\n"
        "    'check_registry_probe')\n"
        "ON CONFLICT (id) DO UPDATE SET description = excluded.description\n"
        "WHERE k.description IS DISTINCT FROM excluded.description;\n"
        "INSERT INTO guard.settings AS s (key, value, value_type, description) VALUES\n"
        "('registry_probe_minutes', '5', 'integer', 'A probe setting.')\n"
        "ON CONFLICT (key) DO UPDATE SET description = excluded.description\n"
        "WHERE s.description IS DISTINCT FROM excluded.description;\n"
    )
    _add_to_manifest(
        sql_copy, "data/guard.checks.registry_probe.sql", "data/guard.checks.detection_health.sql"
    )


_PROBE_ROWS = {
    ("rules", "registry_probe"),
    ("checks", "registry_probe"),
    ("settings", "registry_probe_minutes"),
}


def _created_by_data(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return catalog.rows_created_by_data(conn)


def test_exactly_the_rows_no_migration_creates_are_recorded_as_created_by_data(
    pg_cluster: Cluster, db_url: str
) -> None:
    _apply_everything(db_url)
    with pg_cluster.database() as migrations_only:
        with Migrator(migrations_only, checkout_definitions=False) as migrator:
            migrator.apply()
        by_migrations = set(_rows(migrations_only))
    assert _created_by_data(db_url) == set(_rows(db_url)) - by_migrations


def test_a_new_check_is_a_view_file_and_a_row(db_url: str, sql_copy: Path) -> None:
    shipped = _created_by_data(db_url)  # every row shipped after 0.2.0
    assert shipped and not shipped & _PROBE_ROWS
    _new_check_files(sql_copy)
    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        assert migrator.apply() == [], "no migration"
        outcome = migrator.definitions_outcome
    assert outcome is not None
    assert outcome.closing, "the data files ran"
    assert set(_rows(db_url)) >= _PROBE_ROWS
    assert _created_by_data(db_url) == shipped | _PROBE_ROWS

    # The operator tunes it; another apply keeps the tuning.
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE guard.checks SET enabled = FALSE WHERE id = 'registry_probe'")
        conn.execute("UPDATE guard.settings SET value = '9' WHERE key = 'registry_probe_minutes'")
    _apply_everything(db_url, sql_copy)
    rows = _rows(db_url)
    assert rows[("checks", "registry_probe")]["enabled"] is False
    assert rows[("settings", "registry_probe_minutes")]["value"] == 9

    # A removed data file deletes nothing: deleting a shipped row is a versioned migration.
    manifest = sql_copy / "manifest.txt"
    manifest.write_text(manifest.read_text().replace("data/guard.checks.registry_probe.sql\n", ""))
    (sql_copy / "data/guard.checks.registry_probe.sql").unlink()
    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        migrator.apply()
    assert set(_rows(db_url)) >= _PROBE_ROWS


def test_a_restore_keeps_created_rows_its_data_defines_and_deletes_the_others(
    db_url: str, sql_copy: Path
) -> None:
    shipped = _created_by_data(db_url)
    _new_check_files(sql_copy)
    _apply_everything(db_url, sql_copy)
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE guard.checks SET enabled = FALSE WHERE id = 'registry_probe'")
    wanted = definitions.checkout_definitions(sql_copy)

    with psycopg.connect(db_url) as conn:
        kept = apply_every_definition(conn, wanted, restoring=True)
    assert kept.rows_deleted == []
    assert _rows(db_url)[("checks", "registry_probe")]["enabled"] is False, "tuning kept"

    without = [d for d in wanted if d.path != "data/guard.checks.registry_probe.sql"]
    with psycopg.connect(db_url) as conn:
        gone = apply_every_definition(conn, without, restoring=True)
    assert sorted(gone.rows_deleted) == sorted(f"{r} {k}" for r, k in _PROBE_ROWS)
    assert not _PROBE_ROWS & set(_rows(db_url))
    assert _created_by_data(db_url) == shipped, "the rows its data defines stay"


def _registry_without_operator_columns(url: str) -> dict[Any, Any]:
    return {
        key: {
            c: v
            for c, v in row.items()
            if c not in (*OPERATOR_COLUMNS[key[0]], "xmin", "updated_at")
        }
        for key, row in _rows(url).items()
    }


@pytest.mark.history
def test_rollback_to_0_2_0_and_forward_keeps_operator_values(
    pg_cluster: Cluster, db_url: str, sql_copy: Path
) -> None:
    _new_check_files(sql_copy)
    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        migrator.apply()
    _set_every_operator_column(db_url)
    tuned = _operator_values(_rows(db_url))
    with pg_cluster.database() as release_url:
        with Migrator(release_url) as migrator:
            migrator.apply(to=RELEASE_0_2_0_LAST)
        at_0_2_0 = _registry_without_operator_columns(release_url)

    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        migrator.rollback(to=RELEASE_0_2_0_LAST)
        restored = migrator.definitions_outcome
    assert restored is not None and restored.source == "release 0.2.0"
    assert _registry_without_operator_columns(db_url) == at_0_2_0
    kept = _operator_values(_rows(db_url))
    assert kept, "rows of 0.2.0 kept their operator values"
    assert kept == {key: tuned[key] for key in kept}

    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        migrator.apply()
    with pg_cluster.database() as fresh_url:
        with Migrator(fresh_url, sql_directory=sql_copy) as migrator:
            migrator.apply()
        fresh = _registry_without_operator_columns(fresh_url)
        fresh_values = _operator_values(_rows(fresh_url))
    assert _registry_without_operator_columns(db_url) == fresh
    after = _operator_values(_rows(db_url))
    for key, value in after.items():
        expected = kept.get(key, fresh_values[key])
        assert value == expected, f"{key}: {value!r}, expected {expected!r}"
