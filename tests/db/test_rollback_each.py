"""Each migration's rollback restores the catalog of the migration before it, on a new database
and on an adopted one (the booking tables already there, as an application left them). The
`--all` round trip (tests/db/test_canonical.py) would not notice a rollback that undoes a
neighbour's work or leaves part of its own behind, as long as the last one cleans up.

One database per case: the migrations are applied one at a time with a catalog snapshot
(guard.schema.catalog, what `guard db verify` compares) after each, then rolled back one at a time,
each result compared with the snapshot taken before that migration was applied. The migrations
up to 0.2.0 carry their definitions, so the whole catalog is compared. From
0031a_definitions_from_sql on, a migration holds tables and rows and the definitions come from
sql/ (applied with the newest migration): its rollback must restore the tables, rows, types and
roles exactly, and the rollback that reaches a release (0031_rules_and_checks) that release's
whole catalog, definitions included. The registry rows the data files of sql/ created are
definitions too: a rollback to a level in between keeps them, as it keeps the functions."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet

import psycopg
import pytest

from devtools.legacy_schema import LEGACY_SCHEMA
from guard.schema import catalog
from guard.schema.migrate import Migrator
from guard.schema.releases import release_levels
from tests.support.postgres import Cluster

# 45 s: it builds and rolls back every migration twice (new and adopted databases).
pytestmark = pytest.mark.slow


def _snapshot(url: str) -> catalog.Snapshot:
    with psycopg.connect(url) as conn:
        return catalog.take(conn)


@pytest.fixture(params=["new", "adopted"])
def database(request: pytest.FixtureRequest, pg_cluster: Cluster) -> Iterator[str]:
    with pg_cluster.database() as url:
        if request.param == "adopted":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(LEGACY_SCHEMA.encode())
        yield url


FIRST_WITHOUT_DEFINITIONS = "0031a_definitions_from_sql"


def test_each_rollback_restores_the_catalog_before_its_migration(database: str) -> None:
    releases = release_levels()
    assert "0031_rules_and_checks" in releases, "0.2.0 keeps its definitions"
    with Migrator(database) as migrator:
        ids = [state.id for state in migrator.states()]
        assert len(ids) > 20, "the migrations were not found"
        first_without = ids.index(FIRST_WITHOUT_DEFINITIONS)
        before = [_snapshot(database)]
        for migration in ids:
            assert migrator.apply(to=migration) == [migration]
            before.append(_snapshot(database))
        for index in reversed(range(len(ids))):
            assert migrator.rollback() == [ids[index]]
            restored = _snapshot(database)
            # Roles are the cluster's: a rollback keeps the roles its migration created (another
            # database may use them; a DBA drops a role), so after it only roles that this or a
            # later migration created may be left over.
            kept = set(restored["roles"]) - set(before[index]["roles"])
            created = {role for later in before[index + 1 :] for role in later["roles"]}
            assert kept <= created, f"rolling back {ids[index]} left roles {kept - created}"
            restored["roles"] = sorted(set(restored["roles"]) - kept)
            whole = index < first_without or ids[index - 1] in releases
            expected = before[index] if whole else _versioned(before[index])
            found = restored if whole else _versioned(restored, _created_by_data(database))
            if _differences(expected, found):
                pytest.fail(
                    f"rolling back {ids[index]} did not restore the"
                    f" {'catalog' if whole else 'tables, rows, types and roles'}:\n"
                    + _differences(expected, found)
                )


def _created_by_data(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return catalog.rows_created_by_data(conn)


def _versioned(
    snapshot: catalog.Snapshot, created_by_data: AbstractSet[tuple[str, str]] = frozenset()
) -> catalog.Snapshot:
    """The part of a snapshot versioned migrations own: tables (columns, constraints, indexes,
    options), types, sequences, roles and the registry rows migrations write; without the
    functions, views, triggers, policies, row-level security switches and grants that are
    applied from sql/, nor the registry rows its data files created (those stay at a level in
    between, as the definitions do; the rollback to a release deletes them)."""
    tables = {
        name: {
            key: value
            for key, value in relation.items()
            if key not in ("triggers", "policies", "grants", "owner", "rls", "force_rls")
        }
        for name, relation in snapshot["relations"].items()
        if relation["kind"] != "v"
    }
    kept = ("schemas", "types", "roles", "sequences")
    registries = {
        registry: [
            key for key in snapshot.get(registry) or [] if (registry, key) not in created_by_data
        ]
        for registry in ("settings", "rules", "checks")
    }
    return {"relations": tables, **{key: snapshot.get(key) for key in kept}, **registries}


def _differences(expected: catalog.Snapshot, actual: catalog.Snapshot) -> str:
    """Every entry of the snapshot that differs, by path (what `guard db verify` would report is
    a summary of these)."""
    lines: list[str] = []

    def walk(path: str, want: object, have: object) -> None:
        if want == have:
            return
        # A rollback never turns a validated constraint back into a NOT VALID one: PostgreSQL
        # has no statement for it (only DROP and ADD ... NOT VALID, churn that would only forget
        # that the rows were checked), so the rollback of a migration that validates (0017a,
        # 0022a) leaves its constraint validated. Any other difference is a failure.
        if path.endswith("/validated") and want is False and have is True:
            return
        if isinstance(want, dict) and isinstance(have, dict):
            for key in sorted(set(want) | set(have), key=str):
                walk(f"{path}/{key}", want.get(key, "<absent>"), have.get(key, "<absent>"))
            return
        lines.append(f"{path}: before {want!r:.300}, after rollback {have!r:.300}")

    walk("", expected, actual)
    return "\n".join(lines[:40])
