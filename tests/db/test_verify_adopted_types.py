"""`guard db verify` on a database whose booking tables the application made with its own column
types (Laravel: `string` = varchar(255), `timestamps()` = timestamp(0) without time zone): the
casts PostgreSQL adds around those columns in our views and constraints are no drift, so verify
goes green after `guard db validate`; a real change of those definitions is still found.
Issue 72, row 2: two false drifts kept verify at exit 1 for ever."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from devtools.legacy_schema import LEGACY_SCHEMA
from guard.schema.migrate import Migrator
from guard.schema.validate import validate
from guard.schema.verify import verify
from tests.support.postgres import Cluster
from tests.support.queries import fetch_all

# the columns Booking Guard reads that a Laravel application declares as strings
LARAVEL_STRINGS = (
    "customer_link_status",
    "customer_link_method",
    "direction",
    "appointment_link_status",
)


def _adopt_laravel_typed(url: str) -> None:
    extra = "".join(f"\n    {column} varchar(255)," for column in LARAVEL_STRINGS)
    schema = LEGACY_SCHEMA.replace(
        "    booking_id varchar(255),", "    booking_id varchar(255)," + extra, 1
    )
    assert schema != LEGACY_SCHEMA
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema.encode())
        conn.execute("ANALYZE")  # as autovacuum has long done on the legacy database in use
    with Migrator(url) as migrator:
        migrator.apply()
    report = validate(url, pause_ratio=0)
    assert report.complete, report.constraints


@pytest.fixture(scope="module")
def laravel_typed_template(pg_cluster: Cluster) -> Iterator[str]:
    """The legacy load with Laravel's string columns, applied and validated: built once."""
    with pg_cluster.template("laravel_typed_template", _adopt_laravel_typed) as name:
        yield name


@pytest.fixture
def laravel_typed(pg_cluster: Cluster, laravel_typed_template: str) -> Iterator[str]:
    """A fresh clone of it for each test."""
    with pg_cluster.database(template=laravel_typed_template) as url:
        yield url


def test_verify_is_green_on_the_applications_column_types(laravel_typed: str) -> None:
    types: dict[str, str] = dict(
        fetch_all(
            laravel_typed,
            "SELECT column_name::text, data_type::text FROM information_schema.columns"
            " WHERE table_name = 'calls' AND column_name = ANY(%s)",
            (list(LARAVEL_STRINGS),),
        )
    )
    assert set(types.values()) == {"character varying"}, types
    assert [(d.kind, d.subject) for d in verify(laravel_typed)] == []


@pytest.mark.parametrize(
    ("change", "subject"),
    [
        (
            "ALTER TABLE calls DROP CONSTRAINT guard_calls_direction_check,"
            " ADD CONSTRAINT guard_calls_direction_check"
            " CHECK (direction IN ('inbound', 'outbound', 'sideways'))",
            "constraint guard_calls_direction_check on public.calls",
        ),
        (
            "(the view's own definition, 'outbound' made 'sideways')",
            "view guard.check_call_without_direction",
        ),
    ],
)
def test_a_real_change_is_still_drift(laravel_typed: str, change: str, subject: str) -> None:
    with psycopg.connect(laravel_typed, autocommit=True) as conn:
        if subject.startswith("view"):
            definition = conn.execute(
                "SELECT pg_get_viewdef('guard.check_call_without_direction'::regclass)"
            ).fetchone()
            assert definition is not None and "'inbound'::character varying" in definition[0]
            body = definition[0].rstrip().rstrip(";").replace("'outbound'", "'sideways'")
            change = (
                "CREATE OR REPLACE VIEW guard.check_call_without_direction"
                " WITH (security_invoker = true) AS " + body
            )
        conn.execute(change)
    found = [(d.kind, d.subject) for d in verify(laravel_typed)]
    assert found == [("changed", subject)]
