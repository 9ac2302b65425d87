"""The application's tables as Laravel's Schema builder makes them (`$t->id()`: a bigserial, a
sequence the column's default calls) need USAGE on that sequence to insert: `guard db apply`
grants it to every role it lets insert (guard.insert_sequences), so an adopted application
inserts with no hand-written grant, and `guard db verify` names a sequence grant that is missing.
Issue 72, row 1: every insert failed with 42501 permission denied for sequence."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from guard.schema.migrate import Migrator
from guard.schema.verify import verify
from tests.support.postgres import Cluster
from tests.support.queries import fetch_all

APP_LOGIN = "seq_app_login"
BOUND_LOGIN = "seq_bound_app_login"
LEGACY_UNTIL = "0004_guard_tables"
# the booking tables whose id Laravel makes a bigserial
TABLES = ("companies", "customers", "services", "calls", "appointments")


def _as_laravel_makes_them(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Each table's id a bigserial (a sequence owned by the column, called by its default)
    instead of an identity column: what `$t->id()` creates."""
    for table in TABLES:
        start = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()
        assert start is not None
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        conn.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id START {start[0]}")
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")


def _logins(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for login in (APP_LOGIN, BOUND_LOGIN):
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone():
            conn.execute(f'CREATE ROLE "{login}" LOGIN')
        conn.execute(f'GRANT guard_app TO "{login}"')
    conn.execute("SELECT guard.tenant_grant(%s, 1)", (BOUND_LOGIN,))


def _insert_as(url: str, login: str) -> int:
    """A company-1 call and appointment inserted as `login` the way the application does:
    no id given, the sequence supplies it."""
    with psycopg.connect(make_conninfo(url, user=login)) as conn:
        row = conn.execute(
            "INSERT INTO calls (company_id, retell_call_id, direction)"
            " VALUES (1, %s, 'inbound') RETURNING id",
            (f"laravel-{login}",),
        ).fetchone()
        assert row is not None
        conn.execute("INSERT INTO customers (company_id, name) VALUES (1, 'Eve')")
        return int(row[0])


def _adopt_as_laravel(url: str) -> None:
    """The application's tables first (made as Laravel makes them), then Booking Guard."""
    with Migrator(url) as migrator:
        migrator.apply(to=LEGACY_UNTIL)
        with psycopg.connect(url, autocommit=True) as conn:
            _as_laravel_makes_them(conn)
            conn.execute("INSERT INTO companies (name) VALUES ('One'), ('Two')")
        migrator.apply()
    with psycopg.connect(url, autocommit=True) as conn:
        _logins(conn)


@pytest.fixture(scope="module")
def adopted_template(pg_cluster: Cluster) -> Iterator[str]:
    """The adopted database, built once for the module."""
    with pg_cluster.template("laravel_sequences_template", _adopt_as_laravel) as name:
        yield name


@pytest.fixture
def adopted(pg_cluster: Cluster, adopted_template: str) -> Iterator[str]:
    """A fresh clone of it for each test."""
    with pg_cluster.database(template=adopted_template) as url:
        yield url


def test_an_adopted_application_inserts_with_no_grant_of_its_own(adopted: str) -> None:
    first, second = _insert_as(adopted, APP_LOGIN), _insert_as(adopted, BOUND_LOGIN)
    assert second == first + 1, "both took their ids from the one sequence"
    sequence_grants = [d for d in verify(adopted) if "on sequence" in d.subject]
    assert sequence_grants == []


def test_verify_names_a_missing_sequence_grant_and_apply_grants_restores_it(
    adopted: str,
) -> None:
    with psycopg.connect(adopted, autocommit=True) as conn:
        conn.execute("REVOKE USAGE ON SEQUENCE calls_id_seq FROM guard_app")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="calls_id_seq"):
        _insert_as(adopted, APP_LOGIN)
    missing = [d for d in verify(adopted) if "on sequence" in d.subject]
    assert [(d.kind, d.subject) for d in missing] == [
        ("missing", "grant USAGE on sequence calls_id_seq to application")
    ]
    assert "guard.apply_grants()" in missing[0].detail
    with psycopg.connect(adopted, autocommit=True) as conn:
        conn.execute("SELECT guard.apply_grants()")
    _insert_as(adopted, APP_LOGIN)
    assert [d for d in verify(adopted) if "on sequence" in d.subject] == []


def test_only_what_a_role_may_insert_into_gets_its_sequences(adopted: str) -> None:
    """Reporting reads the tables and inserts into none: no sequence of theirs is granted."""
    granted = fetch_all(
        adopted,
        "SELECT r.kind, count(*) FROM guard.role_names AS r"
        " CROSS JOIN unnest(%s::text[]) AS t (name)"
        " WHERE has_sequence_privilege(r.role_name, t.name || '_id_seq', 'USAGE')"
        " GROUP BY r.kind ORDER BY 1",
        (list(TABLES),),
    )
    assert granted == [("application", len(TABLES))]
