"""guard.is_active_appointment, the one definition of an active appointment: what it says, and
that the planner inlines it (a call costs what the condition written in place costs), on a new
database and on an adopted one whose deleted_at is `timestamp without time zone`."""

from __future__ import annotations

import psycopg
import pytest

from guard.db.migrate import Migrator
from tests.db.test_legacy import LEGACY_SCHEMA
from tests.support.postgres import Cluster

EXPLAIN = (
    "EXPLAIN (VERBOSE, COSTS OFF) SELECT a.id FROM public.appointments AS a"
    " WHERE guard.is_active_appointment(a.status, a.deleted_at)"
)


def test_active_means_not_cancelled_and_not_soft_deleted(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s, d IS NULL, guard.is_active_appointment(s, d) FROM"
            " (VALUES ('scheduled', NULL::timestamptz), (NULL, NULL), ('cancelled', NULL),"
            " ('scheduled', now()), ('cancelled', now())) AS v (s, d)"
        ).fetchall()
    assert [r[2] for r in rows] == [True, True, False, False, False]


@pytest.mark.parametrize("schema", ["new", "adopted"])
def test_the_planner_inlines_it(pg_cluster: Cluster, schema: str) -> None:
    with pg_cluster.database() as url:
        if schema == "adopted":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(LEGACY_SCHEMA.encode())
        with Migrator(url) as migrator:
            migrator.apply()
        with psycopg.connect(url) as conn:
            plan = "\n".join(row[0] for row in conn.execute(EXPLAIN).fetchall())
    assert "is_active_appointment" not in plan, plan
    assert "deleted_at IS NULL" in plan and "cancelled" in plan, plan
