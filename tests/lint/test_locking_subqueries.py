"""A `FOR UPDATE SKIP LOCKED` subquery that picks the rows a statement changes runs once.

Written as `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`, PostgreSQL may plan the
subquery on the inner side of a nested loop and run it again for each outer row; each new run
skips the rows this very statement already changed (they count as locked by it) and returns the
next ones, so the statement takes more than `n` rows: a reviewer handed two items when it asked
for one. `= ANY (ARRAY(SELECT ...))` makes it an InitPlan, run once. The plan depends on the
statistics of the moment, so no database test can force it; this reads the SQL instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKING_IN_SUBQUERY = re.compile(
    r"\bIN\s*\(\s*SELECT\b(?:(?!\bSELECT\b)[^;])*?\bFOR\s+UPDATE\s+SKIP\s+LOCKED",
    re.IGNORECASE,
)
SHIPPED_SQL = sorted((ROOT / "sql").rglob("*.sql"))


def offending_statements(text: str) -> list[str]:
    return [match.group(0) for match in LOCKING_IN_SUBQUERY.finditer(text)]


def test_the_pattern_is_recognised_and_the_safe_form_is_not() -> None:
    unsafe = (
        "UPDATE t SET x = 1 WHERE id IN (\n  SELECT id FROM t LIMIT 1 FOR UPDATE SKIP LOCKED\n)"
    )
    safe = (
        "UPDATE t SET x = 1 WHERE id = ANY (ARRAY(SELECT id FROM t LIMIT 1 FOR UPDATE SKIP LOCKED))"
    )
    plain = "SELECT 1 WHERE 2 IN (SELECT 2); SELECT id FROM t FOR UPDATE SKIP LOCKED"
    assert offending_statements(unsafe)
    assert not offending_statements(safe)
    assert not offending_statements(plain)


@pytest.mark.parametrize("path", SHIPPED_SQL, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_shipped_statement_picks_its_rows_with_a_rescannable_locking_subquery(
    path: Path,
) -> None:
    assert not offending_statements(path.read_text()), (
        f"{path.relative_to(ROOT)}: write `= ANY (ARRAY(SELECT ... FOR UPDATE SKIP LOCKED))`"
    )
