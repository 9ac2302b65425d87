"""Rooms by role: guard/ keeps the runtime library at its top level (booking, calendar, breaker,
retry, masking, connection), operator processes in guard/ops/, the schema engine in
guard/schema/, the demo in guard/demo/ and the commands in guard/cli/. An import may only run
down: the runtime imports no other room, ops and the schema engine only the runtime, the demo
anything but the CLI, and nothing imports the CLI. No two modules import each other, however
indirectly."""

from __future__ import annotations

import ast
from pathlib import Path

GUARD = Path(__file__).resolve().parents[2] / "guard"

MAY_IMPORT = {
    "runtime": {"runtime"},
    "schema": {"runtime", "schema"},
    "ops": {"runtime", "ops"},
    "demo": {"runtime", "ops", "schema", "demo"},
    "cli": {"runtime", "ops", "schema", "demo", "cli"},
}


def modules() -> dict[str, Path]:
    found = {}
    for path in GUARD.rglob("*.py"):
        name = ".".join(path.relative_to(GUARD.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the guard modules it imports anywhere in its text (lazy imports included, those
    for type checkers only not: they never run). ``from guard.x import y`` is an arrow to
    guard.x.y when y is a module, else to guard.x."""
    arrows: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text())
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("guard"):
                module = node.module or ""
                submodules = {f"{module}.{alias.name}" for alias in node.names} & known.keys()
                targets |= submodules if len(submodules) == len(node.names) else {module}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in known}
        arrows[name] = {target for target in targets if target in known} - {name, "guard"}
    return arrows


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else "runtime"


def arrows_up(arrows: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} ({room(source)}) imports {target} ({room(target)})"
        for source, targets in arrows.items()
        for target in targets
        if room(target) not in MAY_IMPORT[room(source)]
    )


def cycles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in arrows.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(arrows):
        if module not in index:
            visit(module)
    return found


def test_every_room_exists() -> None:
    rooms = {room(module) for module in modules()}
    assert rooms == set(MAY_IMPORT)


def test_no_import_runs_back_up() -> None:
    assert arrows_up(imports(modules())) == []


def test_no_modules_import_each_other() -> None:
    assert cycles(imports(modules())) == []


def test_the_checks_see_an_arrow_up_and_a_cycle() -> None:
    arrows = {
        "guard.booking": {"guard.ops.metrics"},
        "guard.ops.metrics": {"guard.ops.cron"},
        "guard.ops.cron": {"guard.ops.metrics"},
        "guard.schema.migrate": {"guard.cli.db"},
    }
    assert arrows_up(arrows) == [
        "guard.booking (runtime) imports guard.ops.metrics (ops)",
        "guard.schema.migrate (schema) imports guard.cli.db (cli)",
    ]
    assert cycles(arrows) == [["guard.ops.cron", "guard.ops.metrics"]]
