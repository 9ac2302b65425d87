"""`python -m bench.record NAME` keeps what a real benchmark printed: its table as text, or its
JSON with when and how it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.record import record


def test_a_table_and_a_json_run_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--calls", "20", "--rounds", "1"]
    assert record("breaker", args, results=tmp_path) == 0
    printed = capsys.readouterr().out
    table = (tmp_path / "breaker--calls20--rounds1.txt").read_text()
    assert table.splitlines()[0].startswith("# python -m bench.breaker --calls 20 --rounds 1, ")
    assert "tenacity_success" in printed and table.endswith(printed)

    assert record("breaker", [*args, "--json"], results=tmp_path) == 0
    kept = json.loads((tmp_path / "breaker--calls20--rounds1.json").read_text())
    assert kept["command"].endswith("--json")
    assert {pair["peer"] for pair in kept["report"]["peers"]} >= {"tenacity_success"}
