"""The SQL documentation keeps its promises, against a migrated database:
- every check view has the columns docs/bi.md shows for one;
- every table docs/bi.md (and docs/security.md's table of roles) says the reporting role can
  read, it and the reviewer can read;
- every ```sql example in docs/ runs as the role the doc names for it (a `<!-- runs as: KIND -->`
  line before the block, where the text says it too), in a transaction rolled back afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.security.conftest import COMPANY_A, connect_as
from tests.support.cron import migrated_cron_database, quiet_cron
from tests.support.postgres import Cluster

ROOT = Path(__file__).resolve().parents[2]
BI = ROOT / "docs" / "bi.md"
SECURITY = ROOT / "docs" / "security.md"

_RUNS_AS = re.compile(r"<!-- runs as: (reporting|reviewer|owner|superuser)( with pg_cron)? -->")
_SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _catalog_columns(conn: psycopg.Connection[tuple[object, ...]], view: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        (view,),
    ).fetchall()
    return [str(name) for (name,) in rows]


def test_every_check_view_has_the_columns_bi_md_shows_for_one(db_url: str) -> None:
    """docs/bi.md shows the columns of one check view (generated from its comments,
    tests/db/test_bi_comments.py) and says every check view has them."""
    shown = re.search(
        r"<!-- columns of (guard\.check_\w+): generated.*?-->\n(.*?)<!-- end of columns -->",
        BI.read_text(),
        re.DOTALL,
    )
    assert shown is not None
    columns = re.findall(r"^\| `(\w+)` \|", shown.group(2), re.MULTILINE)
    assert len(columns) == 9
    with psycopg.connect(db_url) as conn:
        views = conn.execute(
            "SELECT check_view FROM guard.checks WHERE check_view IS NOT NULL"
        ).fetchall()
        assert len(views) >= 9
        for (view,) in views:
            assert _catalog_columns(conn, f"guard.{view}") == columns, view


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_what_bi_says_the_reporting_role_reads_it_can_read(
    seeded_url: str, login_roles: dict[str, str], kind: str
) -> None:
    """The reviewer may do everything reporting may (docs/security.md), so it reads them too."""
    text = BI.read_text()
    readable = re.search(r"The tables behind them can be read too: (.*?)\n\n", text, re.DOTALL)
    assert readable is not None
    tables = set(re.findall(r"`(guard\.\w+)`", readable.group(1)))
    views = set(re.findall(r"^\| `(guard\.\w+)` \|", text, re.MULTILINE))
    assert tables and views
    # and what docs/security.md's table of roles says reporting may read in schema guard
    role_row = re.search(r"^\| reporting \|(?:[^|]*\|){2}([^|]*)\|", SECURITY.read_text(), re.M)
    assert role_row is not None
    named = set(re.findall(r"`(?:guard\.)?(\w+)`", role_row.group(1)))
    with psycopg.connect(seeded_url) as owner:
        in_guard = {
            f"guard.{name}"
            for name in named
            if owner.execute("SELECT to_regclass(%s)", (f"guard.{name}",)).fetchone() != (None,)
        }
    assert {"guard.alerts_report", "guard.detection_runs", "guard.kpis"} <= in_guard
    tables |= in_guard
    with connect_as(seeded_url, login_roles[kind], tenant=COMPANY_A) as conn:
        for relation in sorted(tables | views):
            query = sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(*relation.split(".")))
            conn.execute(query).fetchall()


def sql_examples() -> list[tuple[str, int, str | None, bool, str]]:
    """(doc, block number, role kind, needs pg_cron, SQL) for every ```sql block in docs/."""
    examples = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        for number, block in enumerate(_SQL_BLOCK.finditer(text), start=1):
            before = text[: block.start()].rstrip().rsplit("\n", 3)[-3:]
            marks = [m for line in before if (m := _RUNS_AS.search(line))]
            kind, cron = (marks[-1].group(1), bool(marks[-1].group(2))) if marks else (None, False)
            examples.append((doc.name, number, kind, cron, block.group(1)))
    return examples


EXAMPLES = sql_examples()


@pytest.fixture(scope="module")
def cron_url(pg_cluster: Cluster) -> Iterator[str]:
    """The cluster's one pg_cron database, migrated (as tests/jobs/test_pg_cron.py makes it)."""
    url = migrated_cron_database(pg_cluster)
    # Nothing here needs a job to run (jobs.md's example schedules them itself, rolled back);
    # a scheduled job's run would hold up the DROP DATABASE of every other test here.
    quiet_cron(url)
    yield url


@pytest.mark.parametrize(
    ("doc", "number", "kind", "needs_cron", "query"),
    [
        pytest.param(
            *example,
            id=f"{example[0]}#{example[1]}-{example[2]}",
            marks=[pytest.mark.pg_cron] if example[3] else [],
        )
        for example in EXAMPLES
    ],
)
def test_doc_sql_runs_as_the_role_it_names(
    doc: str,
    number: int,
    kind: str | None,
    needs_cron: bool,
    query: str,
    seeded_url: str,
    login_roles: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    assert kind is not None, f"docs/{doc} sql block {number}: no `<!-- runs as: KIND -->` line"
    url = request.getfixturevalue("cron_url") if needs_cron else seeded_url
    if kind == "superuser":
        conn = psycopg.connect(url)
    else:
        conn = connect_as(url, login_roles[kind], tenant=COMPANY_A)
        conn.autocommit = False
    with conn:
        try:
            conn.execute(query.encode())
        finally:
            conn.rollback()  # the examples that change things change nothing here
