"""Every SQL statement the runtime sends is named in one queries file: a fixed one in
guard/queries.sql, one with a part chosen at run time in guard/queries.py, which loads the file;
the schema engine (guard/schema/) keeps its catalog introspection with it. A statement, or a piece
of one, written anywhere else in guard/ fails here, so there is one place to read what Booking
Guard asks PostgreSQL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from guard import queries

GUARD = Path(__file__).resolve().parents[2] / "guard"
# A statement's start, or a clause of one.
SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|SET|LISTEN|NOTIFY|UNLISTEN|SHOW|RESET|CREATE|DROP"
    r"|ALTER|COPY|LOCK|EXPLAIN|TRUNCATE|VACUUM|ANALYZE|GRANT|REVOKE|COMMENT|BEGIN|COMMIT"
    r"|ROLLBACK|SAVEPOINT|CALL|DO|PREPARE|EXECUTE|DEALLOCATE|DISCARD|REFRESH|MERGE)\s"
    r"|\s(FROM|WHERE|ORDER BY|GROUP BY|JOIN|RETURNING|LIMIT|THEN|ELSE)\s"
    r"|^\s*(FROM|WHERE|ORDER BY|AND|OR|LIMIT|CROSS JOIN|LEFT JOIN)\s"
    r"|\bguard\.\w+\("
)
# Text shown to a person, never sent: (file, the string as written).
SHOWN_NOT_SENT = {
    ("guard/cli/alerts.py", " (`SELECT id FROM guard.checks` lists them)"),  # an error's hint
    ("guard/ops/login_limits.py", " SET "),  # the ALTER ROLE an error message suggests
}


def _composed(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string written inside sql.SQL(...): text composed into a statement, whatever its
    words (`sql.SQL("GRANT {} TO {}")`, or a piece such as `sql.SQL(", ")`)."""
    return [
        (inner.lineno, inner.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "SQL"
        for argument in node.args
        for inner in ast.walk(argument)
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str)
    ]


def _strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_sql_text_lives_in_the_queries_file() -> None:
    runtime = [
        path
        for path in sorted(GUARD.rglob("*.py"))
        if path.relative_to(GUARD).parts[0] != "schema" and path.name != "queries.py"
    ]
    assert len(runtime) > 50, "the walk must see the runtime"
    found = [
        f"{path.relative_to(GUARD.parent)}:{line}: {text[:60]!r}"
        for path in runtime
        for line, text in _strings(path)
        if SQL.search(text)
        and (path.relative_to(GUARD.parent).as_posix(), text) not in SHOWN_NOT_SENT
    ]
    found += [
        f"{path.relative_to(GUARD.parent)}:{line}: {text[:60]!r} (in sql.SQL)"
        for path in runtime
        for line, text in _composed(ast.parse(path.read_text()))
    ]
    assert found == []


def test_the_detector_sees_a_statement_and_a_clause() -> None:
    assert SQL.search("SELECT 1")
    assert SQL.search("SELECT guard.tenant_grant(%s, %s)")
    assert SQL.search(" AND o.company_id IN (SELECT 1)")
    assert SQL.search("LISTEN guard_alerts")
    assert SQL.search("GRANT {} TO {}")
    assert SQL.search("REVOKE ALL ON SCHEMA guard FROM {}")
    assert _composed(ast.parse('psycopg.sql.SQL("GRANT {} TO {}").format(a, b)')) == [
        (1, "GRANT {} TO {}")
    ]
    assert _composed(ast.parse("sql.SQL(queries.GRANT_ROLE)")) == []
    assert not SQL.search("select a channel")  # lower case prose
    assert not SQL.search("Guard watch delivers alerts")


def test_no_other_sql_file_in_the_runtime() -> None:
    found = [
        path.relative_to(GUARD).as_posix()
        for path in GUARD.rglob("*.sql")
        if path.relative_to(GUARD).parts[0] != "schema"
    ]
    assert found == ["queries.sql"]


def _statement_names_read() -> set[str]:
    """Every `queries.NAME` (and `from guard.queries import NAME`) written in the project's Python,
    and every `_QUERIES["NAME"]` in guard/queries.py itself."""
    root = GUARD.parent
    read: set[str] = set()
    for folder in ("guard", "tests", "bench", "devtools"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "queries"
                ):
                    read.add(node.attr)
                elif isinstance(node, ast.ImportFrom) and node.module == "guard.queries":
                    read.update(alias.name for alias in node.names)
                elif (
                    isinstance(node, ast.Subscript)
                    and ast.unparse(node.value) == "_QUERIES"
                    and isinstance(node.slice, ast.Constant)
                ):
                    read.add(str(node.slice.value))
    return {name for name in read if name.isupper()}


def test_the_queries_file_holds_statements() -> None:
    statements = queries.parse(Path(queries.FILE).read_text(encoding="utf-8"))
    assert len(statements) > 100
    assert all(SQL.search(text) for text in statements.values())
    assert all(getattr(queries, name).strip() == text for name, text in statements.items())
    # Each name read is a statement of the file or a constant of queries.py; each statement is read.
    read = _statement_names_read()
    defined = {name for name in vars(queries) if name.isupper()}
    assert sorted(read - set(statements) - defined) == []
    assert sorted(set(statements) - read) == []
    with pytest.raises(AttributeError, match="no statement NO_SUCH"):
        queries.__getattr__("NO_SUCH")


def test_a_block_is_its_name_its_comments_and_its_statement() -> None:
    text = """-- the file's own comment
-- name: ONE
-- why one
SELECT 1
-- a comment inside stays
FROM t

-- --- a section
-- name: TWO
SELECT 2
"""
    assert queries.parse(text) == {
        "ONE": "SELECT 1\n-- a comment inside stays\nFROM t",
        "TWO": "SELECT 2",
    }
    with pytest.raises(ValueError, match="ONE is named twice"):
        queries.parse(text + "\n-- name: ONE\nSELECT 3\n")
    with pytest.raises(ValueError, match=r"THREE .* no statement"):
        queries.parse(text + "\n-- name: THREE\n-- only a comment\n")
