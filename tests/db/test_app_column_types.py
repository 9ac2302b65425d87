"""The application's own migrations change the type of a column Booking Guard's views read: a
plain ALTER TABLE is refused by PostgreSQL ("cannot alter type of a column used by a view or
rule"), `guard.alter_column_type` sets those views aside, alters and re-creates them in one call
and one transaction; afterwards the views answer, keep their privileges, detection runs and
`guard db verify` is clean. Issue 72, row 7: a Laravel migration changing calls.status,
from_number or booking_id failed, and nothing said what to do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from guard.schema.validate import validate
from guard.schema.verify import verify
from tests.security.conftest import create_login
from tests.support.postgres import Cluster
from tests.support.queries import text_on

VIEW_STATE = """
SELECT c.relname::text, c.relacl::text, obj_description(c.oid, 'pg_class'),
       c.reloptions::text, pg_get_userbyid(c.relowner)::text
FROM pg_class AS c
WHERE c.relnamespace = 'guard'::regnamespace AND c.relkind = 'v'
UNION ALL
SELECT t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text, NULL, NULL
FROM pg_trigger AS t
WHERE t.tgrelid = 'public.calls'::regclass AND NOT t.tgisinternal
ORDER BY 1
"""


def _validate_completely(url: str) -> None:
    report = validate(url, pause_ratio=0)
    assert report.complete, report.constraints


@pytest.fixture(scope="module")
def adopted_template(pg_cluster: Cluster, legacy_template_database: str) -> Iterator[str]:
    """The session's legacy database after `guard db validate`, built once for the module."""
    with pg_cluster.template(
        "adopted_template", _validate_completely, source=legacy_template_database
    ) as name:
        yield name


@pytest.fixture
def adopted(pg_cluster: Cluster, adopted_template: str) -> Iterator[str]:
    """A fresh clone of the adopted database for each test."""
    with pg_cluster.database(template=adopted_template) as url:
        yield url


def _column_type(conn: psycopg.Connection[Any], column: str) -> str:
    return text_on(
        conn,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'public.calls'::regclass AND attname = %s",
        (column,),
        column,
    )


@pytest.mark.parametrize(
    ("column", "new_type", "expected"),
    [
        ("status", "varchar(64)", "character varying(64)"),
        ("from_number", "text", "text"),
        ("booking_id", "varchar(512)", "character varying(512)"),
    ],
)
def test_the_applications_column_type_changes_in_one_call(
    adopted: str, column: str, new_type: str, expected: str
) -> None:
    with psycopg.connect(adopted, autocommit=True) as owner:
        views_before = owner.execute(VIEW_STATE).fetchall()
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="used by a view"):
            owner.execute(f"ALTER TABLE public.calls ALTER COLUMN {column} TYPE {new_type}")
        row = owner.execute(
            "SELECT guard.alter_column_type('public.calls', %s, %s)", (column, new_type)
        ).fetchone()
        assert row is not None and row[0] > 0, "some of Booking Guard's views read it"
        assert _column_type(owner, column) == expected
        assert owner.execute(VIEW_STATE).fetchall() == views_before, "views, grants, triggers"
        owner.execute("SELECT count(*) FROM guard.calls_report")
        owner.execute("SELECT count(*) FROM guard.run_detection('-infinity', NULL)")
    assert [(d.kind, d.subject) for d in verify(adopted)] == []


def test_a_failed_alter_leaves_the_views_in_place(adopted: str) -> None:
    with psycopg.connect(adopted, autocommit=True) as owner:
        views_before = owner.execute(VIEW_STATE).fetchall()
        with pytest.raises(psycopg.errors.DivisionByZero):
            owner.execute(
                "SELECT guard.alter_column_type('public.calls', 'status', 'varchar(64)',"
                " '(1 / 0)::text')"
            )
        assert owner.execute(VIEW_STATE).fetchall() == views_before
        assert _column_type(owner, "status") == "character varying(255)"


@pytest.mark.parametrize(
    ("arguments", "sqlstate"),
    [
        (("public.calls", "no_such_column", "text"), "42703"),
        (("public.calls", None, "text"), "22004"),
        ((None, "status", "text"), "22004"),
        (("public.calls", "status", None), "22004"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(
    adopted: str, arguments: tuple[Any, ...], sqlstate: str
) -> None:
    with psycopg.connect(adopted, autocommit=True) as owner:
        views_before = owner.execute(VIEW_STATE).fetchall()
        with pytest.raises(psycopg.Error) as raised:
            owner.execute("SELECT guard.alter_column_type(%s, %s, %s)", arguments)
        assert raised.value.sqlstate == sqlstate
        assert owner.execute(VIEW_STATE).fetchall() == views_before


def test_a_login_that_does_not_own_the_table_is_refused(adopted: str) -> None:
    with psycopg.connect(adopted, autocommit=True) as admin:
        group = admin.execute("SELECT guard.role('application')").fetchone()
        assert group is not None
        create_login(admin, "guard_test_not_owner", group[0])
        views_before = admin.execute(VIEW_STATE).fetchall()
    with psycopg.connect(adopted, user="guard_test_not_owner", autocommit=True) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the owner"):
            app.execute("SELECT guard.alter_column_type('public.calls', 'status', 'text')")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            app.execute("SELECT guard.restore_column_views()")
        # a table of the same name of its own: its definitions must never run as the owner role
        app.execute(
            "CREATE TEMPORARY TABLE guard_set_aside_views AS SELECT 1 AS depth, 'guard'::name"
            " AS schema_name, 'evil'::name AS view_name, 'SELECT 1' AS definition,"
            " NULL::text[] AS options, current_user::name AS owner_name,"
            " NULL::aclitem[] AS privileges, NULL::text AS description"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not Booking Guard"):
            app.execute("SELECT guard.restore_column_views()")
    with psycopg.connect(adopted, autocommit=True) as admin:
        assert admin.execute(VIEW_STATE).fetchall() == views_before
        assert _column_type(admin, "status") == "character varying(255)"
