"""The command sequences of the documentation: every ```sh block of README.md and docs/, with the
comment before it that says how a test runs it.

A block is run line by line in one environment (an `export` carries on to the next line), as a
reader pastes it. Three things are rewritten, and only these:
- the hosts of a `postgresql://` URL (`db.example:5432`, `db1:5432,db2:5432`) become the test's
  cluster, every host of a list the same one;
- a word in capitals the annotation gives a value (`KEY=calendar`) becomes that value;
- a line with optional parts (`[--json]`) runs twice: without them, then with all of them.
A long-running command (`guard watch`, `guard jobs run`, `guard metrics` without `--once`) must
still be running after a few seconds, and exit 130 on SIGINT (Ctrl-C), as the README promises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# How a block is run (the line right before its fence):
#   <!-- a test runs this block: in WORLD[, after the SQL block above][; NAME=value ...] -->
#   <!-- a test runs this block as it stands (tests/...py) -->      a test of its own runs it
#   <!-- no test runs this block: REASON -->
WORLDS = ("an empty database", "a database with Booking Guard")
_ANNOTATION = re.compile(
    r"<!-- (?:a test runs this block(?::"
    r" in (?P<world>[^,;]+?)(?P<after_sql>, after the SQL block above)?(?:; (?P<values>[^>]+?))?"
    r"| as it stands \((?P<test>tests/[\w/]+\.py)\))"
    r"|no test runs this block: (?P<reason>[^>]+?)) -->"
)
_FENCE = re.compile(r"^```(\w*)$")
_OPTIONAL = re.compile(r" \[([^\]]+)\]")
_URL_HOSTS = re.compile(r"(postgresql://[^@/\s'\"]*@)([^/\s'\"?]+)")
_LONG_RUNNING = re.compile(r"^guard (watch|jobs run|metrics)\b")
# a line of a fenced block that is a command a reader would type (not output, not code)
COMMAND = re.compile(
    r"^(export |eval |[A-Z_]+=\S+ )?(guard|psql|createdb|dropdb|pg_prove|make|pip) "
)


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    body: list[str]
    annotation: str | None = None
    sql_before: str | None = None  # the ```sql block right before, with only prose between

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        return [line for line in self.body if line.strip() and not line.lstrip().startswith("#")]


@dataclass
class Plan:
    world: str
    after_sql: bool
    values: dict[str, str] = field(default_factory=dict)


def blocks() -> list[Block]:
    """Every fenced block of the pages, with the HTML comment on the line before it (if any)."""
    found: list[Block] = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        last_sql: str | None = None
        prose_since_sql = True
        i = 0
        while i < len(lines):
            fence = _FENCE.match(lines[i])
            if not fence:
                if lines[i].startswith("```") or not lines[i].strip():
                    pass
                elif not lines[i].startswith("<!--"):
                    prose_since_sql = True
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = lines[i - 1] if i > 0 and lines[i - 1].startswith("<!--") else None
            block = Block(page, i + 1, fence.group(1), lines[i + 1 : end], before)
            if block.language == "sql":
                last_sql, prose_since_sql = "\n".join(block.body), False
            elif block.language == "sh" and not prose_since_sql:
                block.sql_before = last_sql
            found.append(block)
            i = end + 1
    return found


def shell_blocks() -> list[Block]:
    return [block for block in blocks() if block.language == "sh"]


def plan(block: Block) -> Plan | None:
    """How a test runs `block` here; None when another test runs it or none does."""
    match = _ANNOTATION.fullmatch(block.annotation or "")
    if match is None:
        raise ValueError(f"{block.name}: the line before the block says no way to run it")
    if match.group("world") is None:
        return None
    if match.group("world") not in WORLDS:
        raise ValueError(f"{block.name}: no world {match.group('world')!r}; one of {WORLDS}")
    values = dict(pair.split("=", 1) for pair in (match.group("values") or "").split())
    return Plan(match.group("world"), bool(match.group("after_sql")), values)


def annotation_parts(block: Block) -> dict[str, str | None]:
    match = _ANNOTATION.fullmatch(block.annotation or "")
    return match.groupdict() if match else {}


def expand(line: str, values: dict[str, str], host: str) -> list[str]:
    """The commands one documented line stands for, rewritten as the module docstring says."""
    for name, value in values.items():
        line = re.sub(rf"\b{name}\b", value, line)
    line = _URL_HOSTS.sub(
        lambda m: m.group(1) + ",".join(host for _ in m.group(2).split(",")), line
    )
    if not _OPTIONAL.search(line):
        return [line]
    return [_OPTIONAL.sub("", line), _OPTIONAL.sub(r" \1", line)]


def runs_until_stopped(command: str) -> bool:
    words = re.sub(r"^([A-Z_]+=\S+ )+", "", command).split("#", 1)[0]
    return bool(_LONG_RUNNING.match(words)) and "--once" not in words
