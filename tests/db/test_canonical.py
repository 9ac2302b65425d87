"""The database built from the migrations is the database the canonical sql/ files describe, and
the stored snapshot that `guard db verify` uses is that database's snapshot."""

from __future__ import annotations

import psycopg
import pytest

from devtools import snapshot
from guard.resources import canonical_files, snapshot_path, sql_dir
from guard.schema import catalog, definitions
from guard.schema.drift import compare
from guard.schema.migrate import Migrator
from tests.support.canonical import build_from_canonical
from tests.support.postgres import Cluster


def _snapshot(url: str) -> catalog.Snapshot:
    with psycopg.connect(url) as conn:
        return catalog.take(conn)


def _describe(expected: catalog.Snapshot, actual: catalog.Snapshot) -> str:
    return "\n".join(line for d in compare(expected, actual, set()) for line in d.lines())


def test_migrations_build_the_canonical_schema(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as from_migrations, pg_cluster.database() as from_canonical:
        with Migrator(from_migrations) as migrator:
            migrator.apply()
        build_from_canonical(from_canonical)
        migrated, canonical = _snapshot(from_migrations), _snapshot(from_canonical)
    assert migrated["relations"], "the snapshot saw no tables: the comparison would be empty"
    assert migrated == canonical, _describe(canonical, migrated)


# The catalog snapshot holds the registries' keys only (a value a DBA tuned is not drift); the
# defaults a fresh database gets must still be the canonical ones, rows included.
_REGISTRY_ROWS = (
    "SELECT 'setting', key, value::text FROM guard.settings"
    # (a rule's stage is state: it advances as its constraints are validated)
    " UNION ALL SELECT 'rule', id, concat_ws('|', invariant, severity, description, remedy, mode,"
    " constraint_names::text, enabled::text) FROM guard.rules"
    " UNION ALL SELECT 'check', id, concat_ws('|', rule_id, severity, description, remedy,"
    " check_view, enabled::text, sweep::text) FROM guard.checks"
    " UNION ALL SELECT 'job', name, concat_ws('|', schedule, interval_seconds::text, command,"
    " description, enabled::text) FROM guard.jobs"
    " ORDER BY 1, 2"
)


def test_migrations_give_the_canonical_settings_rules_checks_and_jobs(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as from_migrations, pg_cluster.database() as from_canonical:
        with Migrator(from_migrations) as migrator:
            migrator.apply()
        build_from_canonical(from_canonical)
        with psycopg.connect(from_migrations) as a, psycopg.connect(from_canonical) as b:
            migrated = a.execute(_REGISTRY_ROWS).fetchall()
            canonical = b.execute(_REGISTRY_ROWS).fetchall()
    assert len(canonical) > 40, "the registries were not read"
    assert migrated == canonical, sorted(set(migrated) ^ set(canonical))


def test_stored_snapshot_is_the_canonical_schema(pg_cluster: Cluster) -> None:
    """The stored snapshot is what devtools/snapshot.py takes (`make generated` writes
    it). Its texts are as PostgreSQL 15 prints them; on another version the stored views are
    printed by that server first."""
    with pg_cluster.database() as url, psycopg.connect(url) as conn:
        build_from_canonical(url)
        canonical = catalog.take(conn)
        stored, made_from = definitions.stored_snapshot()
        stored = catalog.as_printed_by(conn, stored)
    assert stored == canonical, "stale snapshot, run `make generated`:\n" + _describe(
        canonical, stored
    )
    assert made_from == snapshot.definitions_digest(), (
        "the snapshot was made from other definitions than sql/ has: run `make generated`"
    )


def test_the_snapshot_generator_writes_what_is_stored(pg_cluster: Cluster) -> None:
    """On PostgreSQL 15, byte for byte (elsewhere the generator refuses to take it)."""
    with pg_cluster.database() as url, psycopg.connect(url) as conn:
        if conn.info.server_version // 10000 != snapshot.SERVER_VERSION:
            pytest.skip(f"the snapshot is taken on PostgreSQL {snapshot.SERVER_VERSION}")
        build_from_canonical(url)
        generated = snapshot.render(snapshot.take(url), snapshot.definitions_digest())
    assert snapshot_path().read_text() == generated, (
        "guard/schema/canonical_snapshot.json is stale: run `make generated`"
    )


def test_every_canonical_file_is_in_the_manifest() -> None:
    listed = {path.resolve() for path in canonical_files()}
    on_disk = {path.resolve() for path in sql_dir().rglob("*.sql")}
    assert on_disk - listed == set(), "canonical files missing from sql/manifest*.txt"
    assert listed - on_disk == set(), "a manifest names files that do not exist"
    assert len(canonical_files()) == len(listed), "a file is listed twice"


@pytest.mark.history
def test_apply_rollback_all_apply_gives_the_same_catalog(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url:
        with Migrator(url) as migrator:
            first_applied = migrator.apply()
            first = _snapshot(url)
            assert migrator.apply() == [], "a second apply must be a no-op"
            assert _snapshot(url) == first
            rolled_back = migrator.rollback(all_=True)
            assert rolled_back == list(reversed(first_applied))
            emptied = _snapshot(url)
            assert emptied["relations"] == {} and emptied["schemas"] == []
            assert migrator.apply() == first_applied
        assert _snapshot(url) == first, _describe(first, _snapshot(url))


@pytest.mark.history
def test_rollback_to_keeps_the_named_migration(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url, Migrator(url) as migrator:
        ids = migrator.apply()
        assert migrator.rollback(to=ids[1]) == list(reversed(ids[2:]))
        assert [s.id for s in migrator.states() if s.applied] == ids[:2]
        assert migrator.apply(to=ids[2]) == [ids[2]]
        assert migrator.rollback() == [ids[2]]
