"""`make mutate` writes its run to results/mutation/: the table it prints, as Markdown, and
every outcome as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mutation import mutate
from mutation.mutate import Outcome


def test_a_run_is_written_as_a_table_and_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mutate, "RESULTS", tmp_path)
    outcomes = [
        Outcome("a-killed", "alerts", "killed", "tests/x.py::t", 1.0, False),
        Outcome("a-survived", "alerts", "survived", "", 1.0, True),
        Outcome("b-error", "booking", "error", "did not build", 1.0, False),
    ]
    mutate.print_table(outcomes, 90.0)
    printed = capsys.readouterr().out
    table = (tmp_path / "last-run.md").read_text()
    assert "| alerts | 2 | 1 | 1 | 1 | 0 | 50.0 % | 100.0 % |" in table
    assert "| booking | 1 | 0 | 0 | 0 | 1 | - | - |" in table
    assert "| total | 3 | 1 | 1 | 1 | 1 | 50.0 % | 100.0 % |" in table
    assert "alerts" in printed and "50.0 %" in printed
    record = json.loads((tmp_path / "last-run.json").read_text())
    assert record["minutes"] == 1.5
    assert [o["mutant_id"] for o in record["outcomes"]] == ["a-killed", "a-survived", "b-error"]
