"""`make lint`'s sqlfluff step (devtools.sqllint) with the real sqlfluff: a file that passed
is not linted again until its content, the configuration or sqlfluff's version changes, and a
file with a violation is never recorded as passed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devtools import sqllint

CLEAN = "SELECT 1 AS one;\n"
VIOLATION = "SELECT  1 AS one;\n"  # two spaces: LT01
CONFIG = "[sqlfluff]\ndialect = postgres\ntemplater = raw\n"
SQLFLUFF = [str(Path(sys.executable).with_name("sqlfluff")), "lint", "--processes", "1"]


def _run(root: Path, capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = sqllint.lint([root / "sql"], root, root / "record", SQLFLUFF)
    return status, capfd.readouterr().out


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / ".sqlfluff").write_text(CONFIG)
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "a.sql").write_text(CLEAN)
    (tmp_path / "sql" / "b.sql").write_text(CLEAN)
    return tmp_path


def test_a_file_that_passed_is_linted_again_only_when_it_changes(
    checkout: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _run(checkout, capfd)[1].startswith("sqlfluff: 2 of 2 files changed")
    assert _run(checkout, capfd) == (0, "sqlfluff: 0 of 2 files changed since they last passed\n")
    (checkout / "sql" / "b.sql").write_text(VIOLATION)
    status, out = _run(checkout, capfd)
    assert status != 0 and "1 of 2 files changed" in out and "LT01" in out
    status, out = _run(checkout, capfd)
    assert status != 0 and "1 of 2 files changed" in out, "a failing file is never recorded"
    (checkout / "sql" / "b.sql").write_text(CLEAN)
    assert _run(checkout, capfd)[0] == 0
    assert "0 of 2 files changed" in _run(checkout, capfd)[1]


@pytest.mark.parametrize("config", [".sqlfluff", "sql/.sqlfluff", ".sqlfluffignore"])
def test_a_changed_configuration_lints_every_file_again(
    checkout: Path, capfd: pytest.CaptureFixture[str], config: str
) -> None:
    assert _run(checkout, capfd)[0] == 0
    (checkout / config).write_text(
        "sql/none.sql\n" if config.endswith("ignore") else CONFIG + "max_line_length = 90\n"
    )
    assert "2 of 2 files changed" in _run(checkout, capfd)[1]


def test_another_sqlfluff_version_lints_every_file_again(
    checkout: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(checkout, capfd)[0] == 0
    monkeypatch.setattr(sqllint, "version", lambda _name: "0.0.1")
    assert "2 of 2 files changed" in _run(checkout, capfd)[1]


def test_the_queries_file_is_rendered_line_for_line() -> None:
    text = (
        "-- name: ONE\nSELECT %s, %(name)s, '{}' FROM {table}\n{clause}\nWHERE a %% 2 = 0\n\n"
        "-- name: TWO\nINSERT INTO t (a)\n"
    )
    assert sqllint.render_queries(text) == (
        "-- name: ONE\nSELECT $1, $1, '{}' FROM (SELECT NULL)\n-- {clause}\nWHERE a % 2 = 0;\n\n"
        "-- name: TWO\nINSERT INTO t (a) DEFAULT VALUES;\n"
    )
