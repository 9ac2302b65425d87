"""`python -m devtools.generate` (`make generated`) on a copy of the generated files: it
names what is stale and exits 1 with --check, writes it without, and leaves the lock table alone
(no database at all) while the table's fingerprint matches the migrations."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest

from devtools import bi_columns, lock_table
from devtools.database import Databases
from devtools.generate import CHECKOUT, main
from tests.support.migrations import shipped_migrations
from tests.support.postgres import Cluster


def _copy(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CHECKOUT / path, root / path)


@contextmanager
def _no_database() -> Iterator[Databases]:
    raise AssertionError("a database was asked for")
    yield


def test_check_names_the_stale_copy_exits_1_and_writing_makes_it_current(
    tmp_path: Path, pg_cluster: Cluster, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _copy(tmp_path, bi_columns.REFERENCE, bi_columns.BI_MD)
    stale = (tmp_path / bi_columns.REFERENCE).read_text().replace("| view |", "| table |", 1)
    assert stale != (CHECKOUT / bi_columns.REFERENCE).read_text()
    (tmp_path / bi_columns.REFERENCE).write_text(stale)

    def databases() -> AbstractContextManager[Databases]:
        return nullcontext(Databases(pg_cluster.url, migrated=db_url))

    args = ["--only", "bi_columns", "--root", str(tmp_path)]
    assert main([*args, "--check"], databases) == 1
    said = capsys.readouterr().err
    assert bi_columns.REFERENCE in said and bi_columns.BI_MD not in said, said
    assert (tmp_path / bi_columns.REFERENCE).read_text() == stale, "--check wrote the file"

    assert main(args, databases) == 0
    assert main([*args, "--check"], databases) == 0
    assert (tmp_path / bi_columns.REFERENCE).read_text() != stale


def _dba_md_made_from(root: Path, made_from: str) -> str:
    _copy(root, lock_table.PATH)
    _, _, table, _ = lock_table.split((root / lock_table.PATH).read_text())
    doc = lock_table.with_table((root / lock_table.PATH).read_text(), table, made_from)
    (root / lock_table.PATH).write_text(doc)
    return doc


def test_the_lock_table_is_skipped_while_its_fingerprint_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _dba_md_made_from(tmp_path, lock_table.fingerprint())
    assert main(["--only", "lock_table", "--root", str(tmp_path)], _no_database) == 0
    assert "skipped" in capsys.readouterr().out
    assert (tmp_path / lock_table.PATH).read_text() == doc


def test_check_names_the_lock_table_made_from_other_migrations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _dba_md_made_from(tmp_path, "0" * 64)
    args = ["--only", "lock_table", "--check", "--root", str(tmp_path)]
    assert main(args, _no_database) == 1
    assert lock_table.PATH in capsys.readouterr().err
    assert (tmp_path / lock_table.PATH).read_text() == doc


def test_editing_a_migration_changes_the_fingerprint(tmp_path: Path) -> None:
    copy = shipped_migrations(tmp_path)
    assert lock_table.fingerprint(copy) == lock_table.fingerprint()
    first = sorted(copy.glob("0*.sql"))[0]
    first.write_text(first.read_text() + "\n-- a comment is an edit too\n")
    assert lock_table.fingerprint(copy) != lock_table.fingerprint()
