"""guard.schema.migration_files reads each migration as yoyo would, without yoyo's repeated
splits."""

from __future__ import annotations

from pathlib import Path

import pytest
from yoyo import read_migrations
from yoyo.migrations import read_sql_migration

from guard.errors import GuardError
from guard.resources import migrations_dir
from guard.schema import migration_files


def _shipped() -> list[Path]:
    return sorted(migrations_dir().glob("*.sql"))


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.name)
def test_statements_are_yoyos_split(path: Path) -> None:
    assert migration_files.statements(path) == read_sql_migration(str(path))[2]


def test_transactional_is_what_yoyo_reads_for_every_migration() -> None:
    ours = {m.id: migration_files.transactional(m) for m in read_migrations(str(migrations_dir()))}
    theirs = read_migrations(str(migrations_dir()))
    for migration in theirs:
        migration.load()
    assert ours == {m.id: m.use_transactions for m in theirs}
    assert False in ours.values() and True in ours.values(), "both kinds are shipped"


def _migration(directory: Path, text: str) -> object:
    (directory / "0001_one.sql").write_text(text)
    (migration,) = read_migrations(str(directory))
    return migration


def test_a_missing_rollback_file_has_no_statements(tmp_path: Path) -> None:
    assert migration_files.statements(tmp_path / "0001_one.rollback.sql") == []


def test_leading_directives_and_comments_are_not_a_statement(tmp_path: Path) -> None:
    path = tmp_path / "0001_one.sql"
    path.write_text("-- transactional: false\n-- Why.\n\nSELECT 1;\n\nSELECT 2;\n")
    assert migration_files.statements(path) == ["SELECT 1;", "SELECT 2;"]


@pytest.mark.parametrize(
    ("directive", "expected"),
    [("", True), ("-- transactional: true\n", True), ("-- transactional: FALSE\n", False)],
)
def test_the_transactional_directive(tmp_path: Path, directive: str, expected: bool) -> None:
    migration = _migration(tmp_path, f"{directive}-- Why.\nSELECT 1;\n")
    assert migration_files.transactional(migration) is expected


def test_a_directive_after_the_first_statement_is_sql_not_a_directive(tmp_path: Path) -> None:
    migration = _migration(tmp_path, "SELECT 1;\n-- transactional: false\nSELECT 2;\n")
    assert migration_files.transactional(migration) is True


def test_depends_is_refused_not_ignored(tmp_path: Path) -> None:
    migration = _migration(tmp_path, "-- depends: 0000_zero\nSELECT 1;\n")
    with pytest.raises(GuardError, match="0001_one: `-- depends:` is not supported"):
        migration_files.transactional(migration)


def test_a_transactional_value_other_than_true_or_false_is_refused(tmp_path: Path) -> None:
    migration = _migration(tmp_path, "-- transactional: maybe\nSELECT 1;\n")
    with pytest.raises(GuardError, match="must be true or false"):
        migration_files.transactional(migration)
