"""SQL mutants generated from the canonical definitions by operators, not written by hand.

The hand-written catalogue (sql_mutants.toml) holds the mistakes someone thought of; these are
the neighbouring ones, found mechanically in every function, check view, view, policy and the
grants under sql/:

- boundary: a comparison moved across its boundary (`<` and `<=`, `>` and `>=`, `=` and `<>` in
  a condition);
- and-or: `AND` written as `OR` and the reverse (not the `AND` of a `BETWEEN`);
- no-coalesce: `coalesce(x, y)` written as `x` (the NULL path lost);
- no-not: a `NOT` dropped (`IS NOT NULL`, `NOT EXISTS`, `NOT found`, ...);
- drop-condition: one line of a condition dropped (a line that starts with `AND` or `OR`, its
  parentheses balanced: the house style puts one term per line; a `;` or `THEN` ending the line
  is kept);
- drop-grant: one row of guard.role_grants dropped;
- status-literal: one literal dropped from an `IN (...)` or `ARRAY[...]` list of strings.

Each mutant changes one line of one file (the `find` text is that line, with the lines before
it where the line alone is not unique). Comments and string literals are never mutated (a
literal list loses a whole literal). Its covering tests are found by a rule, not chosen: every
test file and pgTAP file that names the object (the file name's object part), the tests the
catalogue names for that file, for a function every test file that executed it however it
got there (a trigger, another function, the CLI: mutation/coverage.py), and for a grants row
every file that names the table or function it grants. Tests marked slow are
left out of a generated mutant's run, so a mutant only a slow test notices counts as a survivor.

Ids are `gen-<object>-<operator>-<sha256 of file, find and replace, 8 hex>`: stable while the line
is, so mutation/equivalent_generated.toml can give a survivor's reason once.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("functions", "checks", "views", "policies")
AREAS = (*FOLDERS, "grants")
GRANTS = "sql/grants/role_grants.sql"
EQUIVALENT = ROOT / "mutation" / "equivalent_generated.toml"
OPERATORS = (
    "boundary",
    "and-or",
    "no-coalesce",
    "no-not",
    "drop-condition",
    "drop-grant",
    "status-literal",
)

_STRING = re.compile(r"'(?:[^']|'')*'")
_COMPARISON = re.compile(r"(?<![<>!=:\-#@&|~*^])(<=|>=|<>|!=|<|>|=)(?![<>=@&|~*])")
_FLIPPED = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "=": "<>", "<>": "=", "!=": "="}
_CONDITION_LINE = re.compile(r"\b(WHERE|AND|OR|ON|WHEN|IF|ELSIF|FILTER|HAVING|USING|CHECK)\b")
_RAISE_OPTION = re.compile(
    r"\b(ERRCODE|MESSAGE|DETAIL|HINT|COLUMN|CONSTRAINT|DATATYPE|TABLE|SCHEMA)\s*$", re.I
)
_AND_OR = re.compile(r"\b(AND|OR)\b")
_NOT = re.compile(r"\bNOT\s+(?!VALID\b|DEFERRABLE\b)")
_COALESCE = re.compile(r"\bcoalesce\(", re.I)
# the start of a line of an UPDATE's SET list, up to its `=`: `    status ` or `SET status `
_ASSIGNED = re.compile(r"\s*(?:SET\s+)?\w+\s*")
_TESTS_THE_TOOL = re.compile(r"^(?:from|import) mutation\b", re.MULTILINE)
# a grants row's object without schema or arguments: ('application', 'TABLE', 'guard.x', ...)
_GRANT_ROW = re.compile(r"'(?:TABLE|VIEW|FUNCTION|SEQUENCE)',\s*'(?:\w+\.)?(\w+)")
_LIST = re.compile(r"(?:\bIN\s*\(|ARRAY\[)\s*('(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')+)\s*[)\]]")


@dataclass(frozen=True)
class Generated:
    id: str
    area: str  # the folder: functions, checks, views, policies, grants
    operator: str
    file: str  # relative to the repository
    find: str
    replace: str
    line: int


def _masked(line: str) -> str:
    """The line with string literals and a trailing comment blanked (same length)."""
    masked = _STRING.sub(lambda m: "'" + " " * (len(m.group()) - 2) + "'", line)
    comment = masked.find("--")
    if comment >= 0:
        masked = masked[:comment] + " " * (len(masked) - comment)
    return masked


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _line_mutations(line: str, path: str) -> Iterator[tuple[str, str]]:
    """(operator, mutated line) for one line of a file."""
    masked = _masked(line)
    if not masked.strip() or masked.lstrip().startswith("--"):
        return
    if masked.lstrip().startswith("CREATE "):
        return  # CREATE OR REPLACE ... WITH (security_invoker = TRUE): no condition
    if path == GRANTS:
        if masked.lstrip().startswith("(") and line.rstrip().endswith("),"):
            yield "drop-grant", ""
        return
    yield from _boundaries(line, masked)
    yield from _and_or(line, masked)
    yield from _no_coalesce(line, masked)
    for match in _NOT.finditer(masked):
        column_definition = masked[match.end() :].startswith("NULL") and not masked[
            : match.start()
        ].rstrip().endswith("IS")
        if not column_definition:  # a NOT NULL column of RETURNS TABLE is no condition
            yield "no-not", line[: match.start()] + line[match.end() :]
    stripped = masked.strip()
    if (stripped.startswith(("AND ", "OR ")) or stripped in ("AND", "OR")) and _balanced(stripped):
        # The statement's `;` or the IF's THEN at the end of the line stays: without it the
        # mutant would not build, a syntax error instead of a dropped condition.
        ending = re.search(r"(?:;|\bTHEN)\s*$", stripped)
        indent = line[: len(line) - len(line.lstrip())]
        yield "drop-condition", indent + ending.group().strip() if ending else ""
    for match in _LIST.finditer(line):
        items = [m.group() for m in _STRING.finditer(match.group(1))]
        start, end = match.span(1)
        for index in range(len(items)):
            kept = ", ".join(items[:index] + items[index + 1 :])
            yield "status-literal", line[:start] + kept + line[end:]


def _boundaries(line: str, masked: str) -> Iterator[tuple[str, str]]:
    condition = bool(_CONDITION_LINE.search(masked))
    for match in _COMPARISON.finditer(masked):
        operator = match.group(1)
        if operator in ("=", "<>", "!=") and not condition:
            continue  # an assignment or a SET, not a test
        if operator == "=" and _RAISE_OPTION.search(masked[: match.start()]):
            continue  # RAISE ... USING ERRCODE = '...': an option, not a test
        if operator == "=" and _ASSIGNED.fullmatch(masked[: match.start()]):
            continue  # `SET status = CASE WHEN ...`: the column assigned, its CASE tested
        start, end = match.span(1)
        yield "boundary", line[:start] + _FLIPPED[operator] + line[end:]


def _and_or(line: str, masked: str) -> Iterator[tuple[str, str]]:
    if "BETWEEN" in masked:
        return  # the AND of a range, not of a condition
    for match in _AND_OR.finditer(masked):
        if masked[match.end() :].lstrip().startswith("REPLACE"):
            continue  # CREATE OR REPLACE
        start, end = match.span(1)
        other = "OR" if match.group(1) == "AND" else "AND"
        yield "and-or", line[:start] + other + line[end:]


def _no_coalesce(line: str, masked: str) -> Iterator[tuple[str, str]]:
    """coalesce(first, ...) -> first, where the call closes on the same line."""
    for match in _COALESCE.finditer(masked):
        depth, first_comma, close = 1, None, None
        for index in range(match.end(), len(masked)):
            char = masked[index]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    close = index
                    break
            elif char == "," and depth == 1 and first_comma is None:
                first_comma = index
        if close is not None and first_comma is not None:
            first = line[match.end() : first_comma].strip()
            yield "no-coalesce", line[: match.start()] + first + line[close + 1 :]


def _unique_find(lines: list[str], number: int, replacement: str, text: str) -> tuple[str, str]:
    """The smallest run of lines ending at `number` that occurs once in the file."""
    for before in range(0, 4):
        first = max(0, number - before)
        find = "".join(lines[first : number + 1])
        if text.count(find) == 1:
            prefix = "".join(lines[first:number])
            newline = "\n" if lines[number].endswith("\n") and replacement else ""
            return find, prefix + replacement + newline
    raise LookupError


def canonical_files(root: Path = ROOT) -> list[Path]:
    files = [p for folder in FOLDERS for p in sorted((root / "sql" / folder).glob("*.sql"))]
    return [*files, root / GRANTS]


def generate(root: Path = ROOT) -> list[Generated]:
    """Every generated mutant of the canonical definitions, in file and line order."""
    mutants: list[Generated] = []
    seen: set[str] = set()
    for path in canonical_files(root):
        relative = path.relative_to(root).as_posix()
        text = path.read_text()
        lines = text.splitlines(keepends=True)
        area = Path(relative).parent.name
        stem = path.name.removesuffix(".sql").split(".")[-1]
        for number, line in enumerate(lines):
            for operator, mutated in _line_mutations(line.rstrip("\n"), relative):
                try:
                    find, replace = _unique_find(lines, number, mutated, text)
                except LookupError:
                    continue
                if find == replace:
                    continue
                digest = hashlib.sha256(f"{relative}\0{find}\0{replace}".encode()).hexdigest()[:8]
                mutant_id = f"gen-{stem}-{operator}-{digest}"
                if mutant_id in seen:
                    continue
                seen.add(mutant_id)
                mutants.append(
                    Generated(mutant_id, area, operator, relative, find, replace, number + 1)
                )
    return mutants


def sample(mutants: list[Generated], size: int | None, seed: int) -> list[Generated]:
    """A simple random sample of `size` (all when None), the same for the same seed and set."""
    if size is None or size >= len(mutants):
        return list(mutants)
    chooser = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    return sorted(chooser.sample(mutants, size), key=lambda m: (m.file, m.line))


def equivalents(path: Path = EQUIVALENT) -> dict[str, str]:
    """id -> why no test can tell that generated mutant from the original."""
    if not path.exists():
        return {}
    return {
        str(raw["id"]): str(raw["reason"])
        for raw in tomllib.loads(path.read_text()).get("equivalent", [])
    }


def object_name(mutant: Generated) -> str:
    """The mutated object as its file names it, without the schema: `run_checks`,
    `alerts.tenant_isolation` (a policy), `role_grants` (the grants)."""
    return Path(mutant.file).name.removesuffix(".sql").removeprefix("guard.")


def covering_tests(
    mutant: Generated,
    catalogued: dict[str, set[str]],
    executed: Mapping[str, frozenset[str]] | None = None,
    root: Path = ROOT,
) -> list[str]:
    """The test files that name the mutant's object, those the catalogue names for its file,
    for a function those that executed it (`executed`: mutation/coverage.py's map), and for a
    grants row those that name the table or function it grants."""
    name = Path(mutant.file).name.removesuffix(".sql").split(".")[-1]
    granted: frozenset[str] = frozenset()
    if mutant.file == GRANTS:
        name = "role_grants"
        # a dropped row is noticed where its object is used, as the role: the tests that name
        # the table or function it grants (a schema's USAGE is used everywhere: left to the
        # tests of the grants)
        row = _GRANT_ROW.search(mutant.find.splitlines()[-1])
        if row:
            granted = _files_naming(row.group(1), root)
    ran = (executed or {}).get(name, frozenset()) if mutant.area == "functions" else frozenset()
    return sorted(
        set(catalogued.get(mutant.file, set())) | _files_naming(name, root) | ran | granted
    )


@functools.cache
def _files_naming(name: str, root: Path) -> frozenset[str]:
    if re.fullmatch(r"\w+", name):  # a whole word: a lookup in each file's words
        return frozenset(path for path, words in _test_words(root) if name in words)
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return frozenset(path for path, text in _test_texts(root) if pattern.search(text))


@functools.cache
def _test_words(root: Path) -> tuple[tuple[str, frozenset[str]], ...]:
    """(path, the words of its text) of every test file: what `\\bname\\b` finds, found once."""
    return tuple((path, frozenset(re.findall(r"\w+", text))) for path, text in _test_texts(root))


@functools.cache
def _test_texts(root: Path) -> tuple[tuple[str, str], ...]:
    """(path, text) of every pytest file and pgTAP file, read once per run. The tests of this
    tool are left out: they name objects and mutant ids as text (a mutated line changes its
    mutant's id), so they would fail for the text of any mutant, not for what it did."""
    files = [
        *sorted((root / "tests").rglob("test_*.py")),
        *sorted((root / "pgtests").rglob("*.sql")),
    ]
    texts = ((f.relative_to(root).as_posix(), f.read_text(errors="replace")) for f in files)
    return tuple((path, text) for path, text in texts if not _TESTS_THE_TOOL.search(text))
