"""`make migration` (guard.db.new_migration) on a copy of sql/ and migrations/: a changed
function, a new function, a new view and a changed trigger become a migration that builds the
canonical schema, and a rollback that restores what the migrations built before; so does a
function CREATE OR REPLACE cannot change (a renamed parameter, another result type: DROP and
CREATE); a table change is left to a person (TODO lines, exit status 1)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from guard.db import catalog
from guard.db.canonical import build_from_canonical
from guard.db.migrate import Migrator
from guard.db.new_migration import main, write_migration
from guard.resources import migrations_dir, sql_dir
from tests.support.postgres import Cluster


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    sql_root, migrations = tmp_path / "sql", tmp_path / "migrations"
    shutil.copytree(sql_dir(), sql_root)
    shutil.copytree(migrations_dir(), migrations)
    yield sql_root, migrations


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, path
    path.write_text(text.replace(old, new))


def _snapshot(url: str) -> catalog.Snapshot:
    with psycopg.connect(url) as conn:
        return catalog.take(conn)


def test_a_written_migration_builds_the_canonical_schema_and_rolls_back(
    pg_cluster: Cluster, tree: tuple[Path, Path]
) -> None:
    sql_root, migrations = tree
    _edit(
        sql_root / "functions" / "guard.touch_updated_at.sql",
        "BEGIN\n",
        "BEGIN\n    -- a changed body\n",
    )
    (sql_root / "functions" / "guard.answer.sql").write_text(
        "-- A new function.\nCREATE FUNCTION guard.answer()\nRETURNS integer\n"
        "LANGUAGE sql\nIMMUTABLE\nRETURN 42;\n"
    )
    (sql_root / "views" / "guard.answer_view.sql").write_text(
        "-- A new view.\nCREATE VIEW guard.answer_view AS\nSELECT guard.answer() AS answer;\n"
    )
    _edit(
        sql_root / "triggers" / "public.calls.guard_calls_note_flag_write.sql",
        "session_outcome,\nbooking_failed ON public.calls",
        "booking_failed ON public.calls",
    )
    with (sql_root / "manifest.txt").open("a") as manifest:
        manifest.write("functions/guard.answer.sql\nviews/guard.answer_view.sql\n")

    with pg_cluster.database() as before_url:
        with Migrator(before_url, migrations) as migrator:
            migrator.apply()
        before = _snapshot(before_url)

    path, plan = write_migration("answer", pg_cluster.url(), sql_root, migrations)
    assert path is not None and path.name.endswith("_answer.sql")
    assert plan.todo == [], plan.todo
    text = path.read_text()
    assert "CREATE OR REPLACE FUNCTION guard.touch_updated_at()" in text
    assert "CREATE OR REPLACE TRIGGER guard_calls_note_flag_write" in text
    assert "SHARE ROW EXCLUSIVE on public.calls" in text, "the header names the trigger's lock"
    (Path("/tmp") / "guard_new_migration_example.sql").write_text(
        text + "\n-- rollback --\n" + path.with_name(path.stem + ".rollback.sql").read_text()
    )

    with pg_cluster.database() as migrated, pg_cluster.database() as canonical:
        with Migrator(migrated, migrations) as migrator:
            migrator.apply()
            build_from_canonical(canonical, sql_root)
            assert _snapshot(migrated) == _snapshot(canonical)
            assert migrator.rollback() == [path.stem]
        assert _snapshot(migrated) == before


def test_a_renamed_parameter_or_a_new_result_type_is_drop_and_create(
    pg_cluster: Cluster, tree: tuple[Path, Path]
) -> None:
    sql_root, migrations = tree
    resolve = sql_root / "functions" / "guard.resolve_job_alert.sql"
    resolve.write_text(resolve.read_text().replace("alert_job", "job_name"))
    _edit(
        sql_root / "functions" / "guard.check_job_heartbeats.sql",
        "RETURNS integer",
        "RETURNS bigint",
    )
    with pg_cluster.database() as before_url:
        with Migrator(before_url, migrations) as migrator:
            migrator.apply()
        before = _snapshot(before_url)

    path, plan = write_migration("reshaped", pg_cluster.url(), sql_root, migrations)
    assert path is not None
    assert plan.todo == [], plan.todo
    text = path.read_text()
    assert "DROP FUNCTION guard.resolve_job_alert(alert_check text, alert_job text);" in text
    assert "DROP FUNCTION guard.check_job_heartbeats();" in text
    assert "SELECT guard.apply_grants();" in text, "grants go with a dropped function"
    rollback = path.with_name(path.stem + ".rollback.sql").read_text()
    assert "SELECT guard.apply_grants();" in rollback, "and with the one the rollback drops"

    with pg_cluster.database() as migrated, pg_cluster.database() as canonical:
        with Migrator(migrated, migrations) as migrator:
            migrator.apply()
            build_from_canonical(canonical, sql_root)
            assert _snapshot(migrated) == _snapshot(canonical)
            assert migrator.rollback() == [path.stem]
        assert _snapshot(migrated) == before


def test_a_table_change_is_left_to_a_person(
    pg_cluster: Cluster, tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sql_root, migrations = tree
    _edit(
        sql_root / "tables" / "guard.delivery_skips.sql",
        "CREATE TABLE guard.delivery_skips (\n",
        "CREATE TABLE guard.delivery_skips (\n    note text,\n",
    )
    before = sorted(p.name for p in migrations.iterdir())
    path, plan = write_migration("note_column", pg_cluster.url(), sql_root, migrations)
    assert plan.todo == ["columns of guard.delivery_skips changed"]
    assert path is not None
    assert "-- TODO (by hand): columns of guard.delivery_skips changed" in path.read_text()
    assert sorted(p.name for p in migrations.iterdir()) == sorted(
        [*before, path.name, path.name.removesuffix(".sql") + ".rollback.sql"]
    )


def test_nothing_to_do_and_bad_names(
    pg_cluster: Cluster, tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sql_root, migrations = tree
    before = sorted(p.name for p in migrations.iterdir())
    path, plan = write_migration("nothing_changed", pg_cluster.url(), sql_root, migrations)
    assert (path, plan.new_functions, plan.forward, plan.todo) == (None, [], [], [])
    assert sorted(p.name for p in migrations.iterdir()) == before
    assert main(["--database-url", pg_cluster.url(), "Bad Name"]) == 2
    assert "NAME" in capsys.readouterr().err
