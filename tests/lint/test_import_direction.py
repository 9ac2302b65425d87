"""Imports run one way: the CLI uses the library, never the reverse. A module outside
`guard/cli/` that imports `guard.cli` makes the library depend on click and on a command's
choices (the daily report lived in `guard/cli/report.py` and `guard/ops/dispatch/` imported it)."""

from __future__ import annotations

import ast
from pathlib import Path

GUARD = Path(__file__).resolve().parents[2] / "guard"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_library_module_imports_the_cli() -> None:
    library = [p for p in GUARD.rglob("*.py") if "cli" not in p.relative_to(GUARD).parts]
    assert len(library) > 50, "the walk must see the library"
    upward = {
        str(path.relative_to(GUARD.parent)): sorted(
            m for m in _imported_modules(path) if m == "guard.cli" or m.startswith("guard.cli.")
        )
        for path in library
    }
    assert {path: mods for path, mods in upward.items() if mods} == {}
