"""The pre-commit hooks run what `make lint` runs: each linter command of the Makefile's lint
target is the entry of a hook in .pre-commit-config.yaml, and every hook's entry is one of them
(a hook that checks something CI does not would reject commits CI accepts)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lint_commands() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    body = re.search(r"^lint: setup\n((?:\t.*\n)+)", makefile, re.M)
    assert body, "no lint target in the Makefile"
    commands = set()
    for line in body.group(1).splitlines():
        words = line.strip().replace("$(BIN)/", "").replace("$(MAKE)", "make").split()
        tool = [w for w in words if not w.startswith(("$(", "-")) or w == "--check"]
        commands.add(" ".join(tool[:2]) if tool[0] in ("ruff", "python") else tool[0])
    return {"make squawk" if c == "make" else c for c in commands}


def _hook_commands() -> set[str]:
    entries = re.findall(r"^\s+entry: (.+)$", (ROOT / ".pre-commit-config.yaml").read_text(), re.M)
    commands = set()
    for entry in entries:
        words = [
            w
            for w in entry.replace(".venv/bin/", "").split()
            if w not in ("--no-print-directory", "-m")
        ]
        commands.add(" ".join(words[:2]) if words[0] in ("ruff", "python", "make") else words[0])
    return commands


def test_hooks_run_the_linters_of_make_lint() -> None:
    lint = _lint_commands()
    sqlfluff = "python devtools.sqllint"
    assert lint == {"ruff check", "ruff format", "mypy", sqlfluff, "make squawk"}, lint
    assert _hook_commands() == lint
