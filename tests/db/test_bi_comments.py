"""What BI users read about the data: `COMMENT ON` every table, view and column of schema guard
the reporting role may read (sql/comments/), the column reference generated from those comments
(docs/bi-columns.md, and the column tables of docs/bi.md between `columns of` markers: written by
devtools/bi_columns.py, `make generated`; the tests fail when they differ), and the promise
that a column BI reads in one release is still readable in the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from devtools import bi_columns
from devtools.bi_columns import Relations, readable
from devtools.generate import CHECKOUT
from guard.schema import releases
from guard.schema.migrate import Migrator
from tests.support.postgres import Cluster
from tests.support.queries import execute

BI_MD = CHECKOUT / bi_columns.BI_MD
REFERENCE = CHECKOUT / bi_columns.REFERENCE


@pytest.fixture(scope="module")
def relations(pg_cluster: Cluster, template_database: str) -> Relations:
    return readable(pg_cluster.url(template_database))


def test_every_table_view_and_column_the_reporting_role_reads_has_a_comment(
    relations: Relations,
) -> None:
    assert len(relations) >= 30  # the walk found the BI surface, not an empty catalog
    missing = [name for name, r in relations.items() if not r["comment"].strip()]
    missing += [
        f"{name}.{column}"
        for name, r in relations.items()
        for column, _, meaning in r["columns"]
        if not meaning.strip()
    ]
    assert missing == [], "add COMMENT ON to sql/comments/ for: " + ", ".join(missing)


def test_comments_describe_rows_and_never_hold_a_phone_number(relations: Relations) -> None:
    wrong = [n for n, r in relations.items() if not r["comment"].startswith("one row per ")]
    assert wrong == [], "a relation's comment starts with `one row per ...`"
    texts = [r["comment"] for r in relations.values()]
    texts += [meaning for r in relations.values() for _, _, meaning in r["columns"]]
    phone_like = [t for t in texts if re.search(r"\+?\d[\d ]{7,}\d", t)]
    assert phone_like == []


def test_the_column_reference_is_the_comments(relations: Relations) -> None:
    wanted = bi_columns.reference(relations)
    assert REFERENCE.read_text() == wanted, "docs/bi-columns.md is stale: run `make generated`"


def test_the_column_tables_of_bi_md_are_the_comments(relations: Relations) -> None:
    text = BI_MD.read_text()
    marked = bi_columns.marked_relations(text)
    for view in ("guard.daily_report_view", "guard.kpis", "guard.calls_report"):
        assert view in marked
    wanted = bi_columns.bi_md_with_tables(text, relations)
    assert BI_MD.read_text() == wanted, "docs/bi.md's column tables are stale: `make generated`"


def test_comments_come_back_when_a_view_is_created_again(db_url: str) -> None:
    execute(
        db_url, "DROP VIEW guard.detection_passes", "COMMENT ON COLUMN guard.kpis.target IS NULL"
    )
    with Migrator(db_url) as migrator:
        migrator.apply()
        assert migrator.definitions_outcome is not None
        assert "views/guard.detection_passes.sql" in migrator.definitions_outcome.applied
    after = readable(db_url)
    assert after["guard.detection_passes"]["comment"].startswith("one row per windowed")
    assert all(meaning for _, _, meaning in after["guard.detection_passes"]["columns"])
    assert dict((c, m) for c, _, m in after["guard.kpis"]["columns"])["target"]


def test_a_registered_check_view_gets_the_check_views_comments(db_url: str) -> None:
    execute(
        db_url,
        (
            """
            CREATE VIEW guard.check_no_company_name WITH (security_invoker = TRUE) AS
            SELECT 'no_company_name'::text AS check_id, c.id AS company_id,
                   'company'::text AS entity_type, c.id AS entity_id, NULL::bigint AS call_id,
                   'low'::text AS severity, now() AS observed_at, '{}'::jsonb AS detail,
                   'I8_known_values'::text AS rule_id
            FROM public.companies AS c WHERE c.name = ''
            """
        ),
        (
            "SELECT guard.register_check('no_company_name', 'I8_known_values',"
            " 'check_no_company_name', 'low', 'a company without a name')"
        ),
        "DROP VIEW guard.kpis",
    )
    with Migrator(db_url) as migrator:
        migrator.apply()
    view = readable(db_url)["guard.check_no_company_name"]
    assert view["comment"].endswith(": a company without a name")
    assert all(meaning for _, _, meaning in view["columns"])


# Readable in the newest release, read elsewhere now, for a reason docs/upgrading.md gives:
# "relation.column" -> where the same column is read now.
MOVED = {
    # Free text may hold a customer's phone number: the reporting role reads it masked only
    # (migration 0041_free_text_masked_for_reporting).
    **{
        f"guard.{table}.{column}": f"guard.{table}_report.{column}"
        for table, columns in {
            "alerts": ("details",),
            "correction_audit": ("before", "after"),
            "review_items": ("details", "claimed_by", "closed_by", "note"),
        }.items()
        for column in columns
    },
}


@pytest.fixture
def last_release_url(pg_cluster: Cluster) -> Iterator[str]:
    with pg_cluster.database() as url:
        yield url


def test_what_bi_read_in_the_last_release_is_still_readable(last_release_url: str) -> None:
    """Renamed or dropped columns keep their old name for one release (docs/bi.md, "Interface
    stability"): every table, view and column the reporting role could read at the newest
    release can still be read after upgrading to this checkout, with the same type."""
    newest = releases.load()[-1]
    with Migrator(last_release_url) as migrator:
        migrator.apply(to=newest.last_migration)
    before = readable(last_release_url)
    assert "guard.daily_report_view" in before  # the release's BI surface, not an empty catalog
    with Migrator(last_release_url) as migrator:
        migrator.apply()
    after = readable(last_release_url)
    now = {
        (f"{name}.{column}", type_)
        for name, relation in after.items()
        for column, type_, _ in relation["columns"]
    }
    gone = [
        f"{name}.{column} {type_}"
        for name, relation in before.items()
        for column, type_, _ in relation["columns"]
        if (MOVED.get(f"{name}.{column}", f"{name}.{column}"), type_) not in now
    ]
    assert gone == [], f"no longer readable as in {newest.version}: " + ", ".join(gone)
    upgrading = (CHECKOUT / "docs" / "upgrading.md").read_text()
    unexplained = [old for old in MOVED if f"`{old}`" not in upgrading]
    assert unexplained == [], "docs/upgrading.md says nothing of " + ", ".join(unexplained)
