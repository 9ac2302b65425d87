"""`make migration` (devtools.new_migration) on a copy of sql/ and migrations/: a change of
functions, views and triggers alone needs no migration (they are applied from sql/); a new
table is written and builds the canonical schema, and its rollback restores what was there; a
change of a table that exists is left to a person (TODO lines, exit status 1)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.new_migration import main, plan_migration, write_migration
from devtools.throwaway import build_from_canonical
from guard.resources import sql_dir
from guard.schema import catalog
from guard.schema.migrate import Migrator
from tests.support.migrations import list_before_the_grants, shipped_migrations
from tests.support.postgres import Cluster


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    sql_root = tmp_path / "sql"
    shutil.copytree(sql_dir(), sql_root)
    yield sql_root, shipped_migrations(tmp_path)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, path
    path.write_text(text.replace(old, new))


def _snapshot(url: str) -> catalog.Snapshot:
    with psycopg.connect(url) as conn:
        return catalog.take(conn)


@pytest.mark.history
def test_definitions_alone_need_no_migration(
    pg_cluster: Cluster, tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sql_root, migrations = tree
    _edit(
        sql_root / "functions" / "guard.touch_updated_at.sql",
        "BEGIN\n",
        "BEGIN\n    -- a changed body\n",
    )
    (sql_root / "functions" / "guard.answer.sql").write_text(
        "-- A new function.\nCREATE OR REPLACE FUNCTION guard.answer()\nRETURNS integer\n"
        "LANGUAGE sql\nIMMUTABLE\nRETURN 42;\n"
    )
    (sql_root / "views" / "guard.answer_view.sql").write_text(
        "-- A new view.\nCREATE OR REPLACE VIEW guard.answer_view AS\n"
        "SELECT guard.answer() AS answer;\n"
    )
    _edit(
        sql_root / "triggers" / "public.calls.guard_calls_check_flag_write.sql",
        "session_outcome,\nbooking_failed ON public.calls",
        "booking_failed ON public.calls",
    )
    list_before_the_grants(sql_root, "functions/guard.answer.sql", "views/guard.answer_view.sql")
    before = sorted(p.name for p in migrations.iterdir())

    path, plan = write_migration("answer", pg_cluster.url(), sql_root, migrations)

    assert (path, plan.forward, plan.todo) == (None, [], [])
    assert sorted(p.name for p in migrations.iterdir()) == before
    with pg_cluster.database() as migrated, pg_cluster.database() as canonical:
        with Migrator(migrated, migrations, sql_directory=sql_root) as migrator:
            migrator.apply()
        build_from_canonical(canonical, sql_root)
        assert _snapshot(migrated) == _snapshot(canonical)


@pytest.mark.history
def test_a_new_table_is_written_and_rolls_back(
    pg_cluster: Cluster, tree: tuple[Path, Path]
) -> None:
    sql_root, migrations = tree
    (sql_root / "tables" / "guard.answers.sql").write_text(
        "-- Answers.\n\nCREATE TABLE guard.answers (\n    id bigint PRIMARY KEY,\n"
        "    answer text NOT NULL\n);\n\nCREATE INDEX answers_answer_idx ON guard.answers"
        " (answer);\n"
    )
    list_before_the_grants(sql_root, "tables/guard.answers.sql")
    with pg_cluster.database() as before_url:
        with Migrator(before_url, migrations, sql_directory=sql_root) as migrator:
            migrator.apply()
        before = _snapshot(before_url)

    path, plan = write_migration("answers", pg_cluster.url(), sql_root, migrations)

    assert path is not None and path.name.endswith("_answers.sql")
    assert plan.todo == [], plan.todo
    assert "CREATE TABLE guard.answers" in path.read_text()
    assert "DROP TABLE guard.answers;" in path.with_name(path.stem + ".rollback.sql").read_text()
    with pg_cluster.database() as migrated, pg_cluster.database() as canonical:
        with Migrator(migrated, migrations, sql_directory=sql_root) as migrator:
            migrator.apply()
            build_from_canonical(canonical, sql_root)
            assert _snapshot(migrated) == _snapshot(canonical)
            assert migrator.rollback() == [path.stem]
        assert _snapshot(migrated) == before


@pytest.mark.history
def test_a_new_table_with_a_view_on_it_is_written(
    pg_cluster: Cluster, tree: tuple[Path, Path]
) -> None:
    """The view (a definition) cannot be applied before the table exists: the tool compares the
    tables the migrations build without the checkout's definitions, and writes the table."""
    sql_root, migrations = tree
    (sql_root / "tables" / "guard.answers.sql").write_text(
        "-- Answers.\n\nCREATE TABLE guard.answers (\n    id bigint PRIMARY KEY\n);\n"
    )
    (sql_root / "views" / "guard.answer_count.sql").write_text(
        "-- How many.\nCREATE OR REPLACE VIEW guard.answer_count AS\n"
        "SELECT count(*) AS answers FROM guard.answers;\n"
    )
    list_before_the_grants(sql_root, "tables/guard.answers.sql", "views/guard.answer_count.sql")

    path, plan = write_migration("answers", pg_cluster.url(), sql_root, migrations)

    assert path is not None and plan.todo == [], plan.todo
    assert "CREATE TABLE guard.answers" in path.read_text()
    assert "answer_count" not in path.read_text(), "the view is applied from sql/"
    with pg_cluster.database() as migrated, pg_cluster.database() as canonical:
        with Migrator(migrated, migrations, sql_directory=sql_root) as migrator:
            migrator.apply()
        build_from_canonical(canonical, sql_root)
        assert _snapshot(migrated) == _snapshot(canonical)


def test_a_table_change_is_left_to_a_person(pg_cluster: Cluster, tree: tuple[Path, Path]) -> None:
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
    assert (path, plan.forward, plan.todo) == (None, [], [])
    assert sorted(p.name for p in migrations.iterdir()) == before
    assert main(["--database-url", pg_cluster.url(), "Bad Name"]) == 2
    assert "NAME" in capsys.readouterr().err


def test_a_row_only_sql_data_has_needs_no_migration_and_a_row_it_lost_is_left_to_a_person(
    tmp_path: Path,
) -> None:
    """A registry row comes from its data file at apply; one the migrations built that sql/ no
    longer has is a shipped row to delete, which only a migration does."""
    empty: catalog.Snapshot = {"relations": {}}
    built = {**empty, "settings": ["kept"], "rules": ["kept_rule"], "checks": []}
    canonical = {**empty, "settings": ["kept", "new"], "rules": ["kept_rule"], "checks": ["c"]}
    assert plan_migration(built, canonical, tmp_path).todo == []
    lost = {**built, "settings": ["gone", "kept"], "checks": ["old_check"]}
    assert plan_migration(lost, canonical, tmp_path).todo == [
        "settings rows deleted: gone",
        "checks rows deleted: old_check",
    ]
