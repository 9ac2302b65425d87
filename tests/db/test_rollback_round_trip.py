"""Every rollback point since release 0.2.0 round-trips: `guard db rollback --to ID --yes`, then
`guard db apply`, leaves `guard db verify` clean, `guard jobs run --once` succeeding and the
application's `guard.check_call` answering, on a database with rows in it.

The case that failed: after `rollback --to 0065_alerts_fillfactor` the rollback of 0066 had put back
the function 0065 had (`guard.normalise_customer_link`), while guard.definitions still said the
checkout's text was applied; the next apply skipped that file (its text had not changed), and its
check before commit found the function unlike the canonical snapshot, every time: 40
differences in `verify`, 9 views missing, detection failing. The migrator now marks the record
of every definition a migration or rollback changes STALE (guard.schema.definitions.fingerprints).

One migrated, seeded template for the module; each point is a clone of it (about 3 s a point).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from devtools.release import migration_ids
from guard.cli import main
from guard.schema.releases import load
from tests.support.postgres import Cluster

pytestmark = pytest.mark.slow

FIRST_RELEASE_WITH_DEFINITIONS = "0.2.0"

SEED = """
INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id, from_number, to_number, session_outcome,
                   booking_failed, created_at)
VALUES
    (1, 1, 'a1', '+49 30 1234567', '+49 40 7654321', NULL, FALSE, now() - interval '2 hours'),
    (2, 1, 'a2', '+49 30 2222222', '+49 40 7654321', 'creation_failed', TRUE, now()),
    (3, 2, 'b1', NULL, '+33 1 11111111', NULL, FALSE, now() - interval '3 days');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, source, created_at)
VALUES (1, 1, 1, 'uid-a1', 'retell_webhook', now() - interval '2 hours');
SELECT count(*) FROM guard.run_detection('-infinity', NULL);
"""


def rollback_points() -> list[str]:
    """The last migration of release 0.2.0 and every migration after it, oldest first."""
    release = next(r for r in load() if r.version == FIRST_RELEASE_WITH_DEFINITIONS)
    ids = migration_ids()
    points = ids[ids.index(release.last_migration) :]
    assert points[0] == "0031_rules_and_checks" and "0065_alerts_fillfactor" in points
    assert len(points) >= 26, points
    return points


POINTS = rollback_points()


@pytest.fixture(scope="module")
def seeded_template(pg_cluster: Cluster, template_database: str) -> Iterator[str]:
    """The migrated template with rows in the booking tables and alerts, shared by every point."""
    with pg_cluster.template("round_trip_template", _seed, source=template_database) as name:
        yield name


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED.encode())


def _guard(url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--database-url", url, *args])


@pytest.mark.parametrize("point", POINTS)
def test_rollback_to_a_point_then_apply_round_trips(
    pg_cluster: Cluster, seeded_template: str, point: str
) -> None:
    with pg_cluster.database(template=seeded_template) as url:
        rolled = _guard(url, "db", "rollback", "--to", point, "--yes")
        assert rolled.exit_code == 0, rolled.output + rolled.stderr

        applied = _guard(url, "db", "apply")
        assert applied.exit_code == 0, applied.output + applied.stderr

        verified = _guard(url, "db", "verify")
        assert verified.exit_code == 0, f"after rollback --to {point}:\n{verified.output}"

        jobs = _guard(url, "jobs", "run", "--once")
        assert jobs.exit_code == 0, jobs.output + jobs.stderr
        assert all(": succeeded in " in line for line in jobs.output.splitlines()), jobs.output

        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT set_config('role', guard.role('application'), TRUE)")
            found = conn.execute("SELECT check_id FROM guard.check_call(2)").fetchall()
            assert found, "check_call found nothing for the failed booking of call 2"
