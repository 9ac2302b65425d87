"""The documentation keeps its promises, by test:
- every `guard ...` command and option shown in README.md and docs/*.md exists in the Click tree;
- no shipped file points at files outside the repository or at issue numbers;
- the validation failure reasons in docs/bi.md are the ones guard.validate_booking returns, and
  the call-end problems in README.md the ones guard.validate_call_end returns, in their order;
- every Prometheus alert rule links its runbook in docs/runbooks.md; every runbook is a rule's;
- the lock-wait figures in README.md and docs/dba.md are the migrator's defaults."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from guard.schema.lock_retry import LockPolicy
from tests.support.cli import all_commands

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
    main = all_commands()
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


# What the walk-through of the weeks after an apply must name (each step names its command).
OPERATIONS_COMMANDS = (
    "guard db verify",
    "guard db validate",
    "guard db apply --dry-run",
    "guard check",
    "guard review list",
    "guard report",
    "guard watch",
    "guard metrics",
    "guard breaker list",
    "guard alerts list",
    "guard jobs status",
)


def test_the_operations_walk_through_quotes_commands_that_parse() -> None:
    """docs/operations.md is checked with the other docs (every command line it quotes exists with
    those options, above), and quotes the command of each of its steps."""
    doc = ROOT / "docs" / "operations.md"
    assert doc in DOCS
    lines = command_lines(doc.read_text())
    assert [problem for line in lines for problem in check_command_line(line)] == []
    missing = [c for c in OPERATIONS_COMMANDS if not any(line.startswith(c) for line in lines)]
    assert not missing, f"docs/operations.md names no {missing}"


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


# The tests and the mutation catalogue are read beside the code: they cite no file that is not
# in the repository either (they may name the tracker's issues, which the shipped text may not).
_OUTSIDE_FILES = re.compile(r"DESIGN\.md|NOTES\.md|\.\./shared")


def test_tests_cite_no_file_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for folder in ("tests", "mutation")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".toml", ".json", ".md", ".sql"}
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if _OUTSIDE_FILES.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def _first_column_of_the_table_after(doc: Path, heading: str) -> list[str]:
    section = doc.read_text().split(heading, 1)[1]
    table = section.split("\n\n|", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)


def _codes_assigned(function: str, variable: str) -> list[str]:
    text = (ROOT / "sql" / "functions" / f"{function}.sql").read_text()
    return re.findall(rf"{variable} := '(\w+)'", text)


def test_the_validation_failure_reasons_are_the_documented_ones() -> None:
    returned = _codes_assigned("guard.validate_booking", "reason")
    documented = _first_column_of_the_table_after(
        ROOT / "docs" / "bi.md", "### Validation failure reasons"
    )
    assert len(returned) >= 7
    assert documented == returned, "docs/bi.md lists the reasons in the order they are checked"


def test_the_call_end_problems_are_the_documented_ones() -> None:
    returned = _codes_assigned("guard.validate_call_end", "problem")
    documented = _first_column_of_the_table_after(ROOT / "README.md", "**The call ends.**")
    assert len(returned) >= 5
    assert documented == returned, "README.md lists the problems in the order they are checked"


def test_the_documented_lock_waits_are_the_migrators_defaults() -> None:
    from guard.cli.db import _policy

    policy = LockPolicy()
    apply_command = all_commands().commands["db"].commands["apply"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in apply_command.params}
    assert defaults["lock_timeout"] == f"{policy.lock_timeout_ms}ms"
    # the CLI's defaults make the policy a caller of the Python API gets without one
    seconds = {
        p.name: p.type.convert(p.default, p, None)
        for p in apply_command.params
        if p.name in ("lock_deadline", "lock_timeout", "statement_timeout")
    }
    made = _policy(seconds["lock_deadline"], seconds["lock_timeout"], seconds["statement_timeout"])
    assert (made.deadline_s, made.lock_timeout_ms, made.statement_timeout_ms) == (
        policy.deadline_s,
        policy.lock_timeout_ms,
        policy.statement_timeout_ms,
    )
    for option in ("lock_timeout", "lock_deadline", "statement_timeout"):
        said = f"`--{option.replace('_', '-')}` (default `{defaults[option]}`"
        for doc in (ROOT / "README.md", ROOT / "docs" / "dba.md"):
            assert said in " ".join(doc.read_text().split()), f"{doc.name} does not say {said}"
    dba = " ".join((ROOT / "docs" / "dba.md").read_text().split())
    floor = f"Once the budget is spent, a statement may still wait {policy.spent_budget_wait_ms} ms"
    assert floor in dba


def test_every_alert_rule_links_its_runbook_and_every_runbook_is_a_rules() -> None:
    rules = (ROOT / "docs" / "prometheus" / "alert-rules.yml").read_text()
    alerts = re.findall(r"^\s+- alert: (\w+)$", rules, re.MULTILINE)
    links = re.findall(r'^\s+runbook_url: "docs/runbooks\.md#([a-z]+)"$', rules, re.MULTILINE)
    headings = re.findall(r"^## (\w+)$", (ROOT / "docs" / "runbooks.md").read_text(), re.MULTILINE)
    assert len(alerts) >= 14
    assert links == [alert.lower() for alert in alerts], "one runbook_url per rule, its own"
    assert headings == links, "docs/runbooks.md has one section per rule, in the rules' order"
