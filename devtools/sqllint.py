"""`python -m devtools.sqllint PATH...` (`make lint`): sqlfluff over the SQL files under
PATH, skipping each file that already passed with the same content, configuration and sqlfluff
version. sqlfluff has no cache of its own and takes most of `make lint`'s time; a fresh checkout
(CI) has no record and lints every file.

The record (.sqlfluff-cache/passed, not committed) holds one digest per file that passed. A run
that finds a violation records nothing of its batch, so every file of it is linted again next
time; a run that passes records exactly the current files.

guard/queries.sql (in .sqlfluffignore: its statements end at a blank line, not a semicolon, and
hold psycopg placeholders and str.format fields) is linted as a rendering of it line for line:
each statement ended by a semicolon, `%s` and `%(name)s` as `$1`, `%%` as `%`, a format field as
`placeholder` or `(SELECT NULL)` (a field alone on its line, a clause, as a comment)."""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

RECORD = Path(".sqlfluff-cache") / "passed"
QUERIES = Path("guard") / "queries.sql"
_PLACEHOLDER = re.compile(r"%(\(\w+\))?s")
# A str.format field outside a quoted literal (JSON paths such as '{}' stay as written).
_FIELD = re.compile(r"('[^']*')|\{(\w*)\}")


def render_queries(text: str) -> str:
    """queries.sql as sqlfluff can parse it, with the same lines (a finding's line is the
    file's)."""
    lines = text.split("\n")
    statement: list[str] = []
    for number, written in enumerate(lines):
        if re.fullmatch(r"\{\w+\}", written):
            lines[number] = f"-- {written}"
            continue
        line = _FIELD.sub(_field, _PLACEHOLDER.sub("$1", written).replace("%%", "%"))
        lines[number] = line
        if line.startswith("--") or not line.strip():
            continue
        statement.append(line)
        if number + 1 < len(lines) and lines[number + 1].strip():
            continue
        # the statement's last line; an INSERT's head (the caller appends the rows) made whole
        text = "\n".join(statement)
        head = text.startswith("INSERT") and not re.search(r"\b(SELECT|VALUES)\b", text)
        code, comment, note = line.partition("  -- ")
        lines[number] = code + (" DEFAULT VALUES;" if head else ";") + comment + note
        statement = []
    return "\n".join(lines)


def _field(match: re.Match[str]) -> str:
    """A quoted literal as written; a format field as a name: `{}` (an identifier composed in)
    as `placeholder`, `{name}` (an expression or a table) as `(SELECT NULL)`."""
    literal, name = match.group(1), match.group(2)
    return literal or ("(SELECT NULL)" if name else "placeholder")


def sql_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.sql")) if path.is_dir() else [path])
    return found


def digest(file: Path, settings: bytes) -> str:
    """What a pass depends on: the file's path and content, the configuration, sqlfluff's
    version."""
    hashed = hashlib.sha256(settings)
    hashed.update(str(file).encode() + b"\0" + file.read_bytes())
    return hashed.hexdigest()


def settings_of(root: Path, paths: Sequence[Path]) -> bytes:
    """sqlfluff's version and every configuration it may read: .sqlfluff and .sqlfluffignore
    at the top and in any directory linted (pgtests/ has its own)."""
    configs = {root / ".sqlfluff", root / ".sqlfluffignore"}
    for path in paths:
        if path.is_dir():
            configs.update(path.rglob(".sqlfluff*"))
    configs = {c for c in configs if c.is_file()}
    parts = [f"sqlfluff {version('sqlfluff')}".encode()]
    parts.extend(str(c).encode() + b"\0" + c.read_bytes() for c in sorted(configs))
    return b"\0".join(parts)


def lint(paths: Sequence[Path], root: Path, record: Path, command: Sequence[str]) -> int:
    """Lint the files under `paths` not recorded as passed with `command` (sqlfluff lint and
    its options); its exit status, or 0 when every file was recorded."""
    settings = settings_of(root, paths)
    files = {file: digest(file, settings) for file in sql_files(paths)}
    passed = set(record.read_text().split()) if record.exists() else set()
    stale = [file for file, key in files.items() if key not in passed]
    print(
        f"sqlfluff: {len(stale)} of {len(files)} files changed since they last passed", flush=True
    )
    status = 0
    if stale:
        status = subprocess.run([*command, *map(str, stale)], check=False).returncode
    if status == 0:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("".join(f"{key}\n" for key in sorted(files.values())))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sqllint", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="SQL files or directories of them")
    parser.add_argument("--processes", default="0", help="sqlfluff's --processes (0: one per core)")
    args = parser.parse_args(argv)
    sqlfluff = str(Path(sys.executable).with_name("sqlfluff"))
    command = [sqlfluff, "lint", "--processes", args.processes]
    paths: list[Path] = args.paths
    if QUERIES in paths:
        rendered = RECORD.parent / "guard-queries.sql"
        rendered.parent.mkdir(parents=True, exist_ok=True)
        rendered.write_text(render_queries(QUERIES.read_text(encoding="utf-8")), encoding="utf-8")
        paths = [rendered if path == QUERIES else path for path in paths]
    return lint(paths, Path.cwd(), Path.cwd() / RECORD, command)


if __name__ == "__main__":
    sys.exit(main())
