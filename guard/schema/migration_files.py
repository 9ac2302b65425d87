"""Reading migration files, their directives and statements, as yoyo reads them.

Splitting (sqlparse) is most of the Python time of a replay, so a file's split is kept per text,
and nothing is split to learn an order: migrations run in file-name order, which is why
`-- depends:` is refused rather than ignored."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import sqlparse
from yoyo.migrations import parse_metadata_from_sql_comments

from guard.errors import GuardError

_TRANSACTIONAL = {"true": True, "false": False}


def statements(path: str | Path) -> list[str]:
    """The statements of an SQL migration file (none for a file that does not exist, as yoyo
    treats a missing rollback file), with the leading directives and comments removed."""
    path = Path(path)
    if not path.exists():
        return []
    return list(_statements_of(path.read_text(encoding="utf-8")))


def transactional(migration: Any) -> bool:
    """Whether yoyo runs `migration` in one transaction (`-- transactional: false` says not)."""
    directives = _directives_of(Path(migration.path).read_text(encoding="utf-8"))
    if "depends" in directives:
        raise GuardError(
            f"migration {migration.id}: `-- depends:` is not supported; migrations run in the"
            " order of their file names"
        )
    value = directives.get("transactional", "true").strip().lower()
    if value not in _TRANSACTIONAL:
        raise GuardError(
            f"migration {migration.id}: `-- transactional: {value}` must be true or false"
        )
    return _TRANSACTIONAL[value]


@functools.lru_cache(maxsize=1024)
def _statements_of(text: str) -> tuple[str, ...]:
    split = sqlparse.split(text)
    if split:
        split[0] = parse_metadata_from_sql_comments(split[0])[2]
    return tuple(s for s in split if s.strip())


@functools.lru_cache(maxsize=1024)
def _directives_of(text: str) -> dict[str, str]:
    # yoyo reads the directives from the comment lines that open the first statement, which
    # are the lines that open the file: reading them needs no split.
    directives: dict[str, str] = parse_metadata_from_sql_comments(text)[0]
    return directives
