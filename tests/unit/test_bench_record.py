"""`python -m bench.record NAME` keeps what a real benchmark printed: its table as text, or its
JSON with when and how it ran."""

from __future__ import annotations

import json
import sys
import types
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


def test_a_run_that_misses_a_target_is_kept_with_its_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def main(argv: list[str]) -> None:
        print("p99 write latency: FAIL")
        raise SystemExit(1)

    def refuse(argv: list[str]) -> None:
        raise SystemExit("--variants: choose from a, b")

    monkeypatch.setitem(sys.modules, "bench.misses", types.SimpleNamespace(main=main))
    monkeypatch.setitem(sys.modules, "bench.refuses", types.SimpleNamespace(main=refuse))
    assert record("misses", [], results=tmp_path) == 1
    assert (tmp_path / "misses.txt").read_text().endswith("p99 write latency: FAIL\n")
    with pytest.raises(SystemExit, match="--variants"):
        record("refuses", [], results=tmp_path)
    assert not (tmp_path / "refuses.txt").exists()
