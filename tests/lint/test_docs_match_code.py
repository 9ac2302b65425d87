"""The documentation keeps its promises, by test:
- every `guard ...` command and option shown in README.md and docs/*.md exists in the Click tree;
- no shipped file points at files outside the repository or at issue numbers."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from guard.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
# A command line starts at `guard ` (after a prompt or variable assignments); `guard: error:`
# (an error message) and `guard.x` (SQL) are not commands.
_COMMAND = re.compile(r"(?:^|[\s$(])guard((?:\s+[^\s#;&>)]+)*)")


def command_lines(text: str) -> list[str]:
    """The `guard ...` invocations in a Markdown text: in code spans and fenced blocks."""
    snippets = [m.group(1) for m in _CODE_SPAN.finditer(_FENCE.sub("", text))]
    for block in _FENCE.finditer(text):
        snippets += [line.split(" #", 1)[0] for line in block.group(1).splitlines()]
    found = []
    for snippet in snippets:
        for match in _COMMAND.finditer(snippet):
            found.append("guard" + match.group(1))
    return found


def _alternatives(token: str) -> list[str]:
    return [t for t in re.split(r"\\?\|", token.strip("[]")) if t]


def check_command_line(line: str) -> list[str]:
    """What in one documented invocation the Click tree does not have."""
    tokens = re.sub(r"\\?\|", " | ", line).replace("[", " ").replace("]", " ").split()[1:]
    commands: list[click.Command] = [main]
    options = {opt for p in main.params for opt in p.opts} | {"--help", "--version"}
    problems: list[str] = []
    words = iter(tokens)
    for token in words:
        if token == "|":
            continue
        if token.startswith("--"):
            name = token.split("=", 1)[0]
            if name not in options:
                problems.append(f"{line!r}: no option {name} on {_names(commands)}")
            else:
                takes_value = any(
                    name in p.opts and not getattr(p, "is_flag", False)
                    for c in commands
                    for p in c.params
                )
                if takes_value and "=" not in token:
                    next(words, None)
            continue
        groups = [c for c in commands if isinstance(c, click.Group)]
        if not groups:
            continue  # an argument of a leaf command
        found = [g.commands[t] for g in groups for t in _alternatives(token) if t in g.commands]
        if not found:
            if any(t[:1].islower() and t.isidentifier() for t in _alternatives(token)):
                problems.append(f"{line!r}: no command {token!r} under {_names(commands)}")
            break
        commands = found
        options = {opt for c in commands for p in c.params for opt in p.opts} | {"--help"}
    return problems


def _names(commands: list[click.Command]) -> str:
    return "/".join(c.name or "guard" for c in commands)


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_documented_command_and_option_exists(doc: Path) -> None:
    lines = command_lines(doc.read_text())
    problems = [problem for line in lines for problem in check_command_line(line)]
    assert not problems, "\n".join(problems)


def test_the_checker_can_fail() -> None:
    assert check_command_line("guard check --everything") == [
        "'guard check --everything': no option --everything on check"
    ]
    assert check_command_line("guard db migrate") == [
        "'guard db migrate': no command 'migrate' under db"
    ]
    assert check_command_line("guard breaker trip\\|reset KEY --reason TEXT --create") == []
    assert command_lines("run `guard check --all`, then\n```sh\n$ guard db status  # x\n```\n") == [
        "guard check --all",
        "guard db status",
    ]


# Files of the working environment that are not shipped with the repository, and tracker issue
# numbers: shipped text must stand on its own.
_OUTSIDE = re.compile(r"DESIGN\.md|NOTES\.md|\.\./shared|/work/|\b[Ii]ssues?\s*#?\d+")
SHIPPED = [
    ROOT / "README.md",
    *sorted(
        p
        for folder in ("docs", "sql", "migrations", "guard", "pgtests", "bench")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and p.suffix in {".md", ".sql", ".py", ".txt", ".yml", ".yaml", ".json"}
    ),
]


def test_shipped_files_cite_nothing_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for path in SHIPPED
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if _OUTSIDE.search(line)
    ]
    assert not offenders, "\n".join(offenders)
