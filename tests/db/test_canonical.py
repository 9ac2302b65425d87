"""The database built from the migrations is the database the canonical sql/ files describe, and
the stored snapshot that `guard db verify` uses is that database's snapshot."""

from __future__ import annotations

import json
import os

import psycopg

from guard.db import catalog
from guard.db.drift import compare
from guard.db.migrate import Migrator
from guard.resources import canonical_files, snapshot_path, sql_dir
from tests.support.canonical import build_from_canonical
from tests.support.postgres import Cluster

# The version `make snapshot` writes the stored snapshot on (its view texts are as it prints them).
SNAPSHOT_SERVER_VERSION = 15


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


def test_stored_snapshot_is_the_canonical_schema(pg_cluster: Cluster) -> None:
    """Regenerate with `make snapshot` after changing sql/. The stored texts are as PostgreSQL
    15 prints them; on another version the stored views are printed by that server first."""
    with pg_cluster.database() as url, psycopg.connect(url) as conn:
        build_from_canonical(url)
        canonical = catalog.take(conn)
        if os.environ.get("GUARD_WRITE_SNAPSHOT") == "1":
            major = conn.info.server_version // 10000
            assert major == SNAPSHOT_SERVER_VERSION, (
                f"write the snapshot on PostgreSQL {SNAPSHOT_SERVER_VERSION} (this is {major})"
            )
            snapshot_path().write_text(json.dumps(canonical, indent=1, sort_keys=True) + "\n")
        stored = catalog.as_printed_by(conn, json.loads(snapshot_path().read_text()))
    assert stored == canonical, "stale snapshot, run `make snapshot`:\n" + _describe(
        canonical, stored
    )


def test_every_canonical_file_is_in_the_manifest() -> None:
    listed = {path.resolve() for path in canonical_files()}
    on_disk = {path.resolve() for path in sql_dir().rglob("*.sql")}
    assert on_disk - listed == set(), "canonical files missing from sql/manifest*.txt"
    assert listed - on_disk == set(), "a manifest names files that do not exist"
    assert len(canonical_files()) == len(listed), "a file is listed twice"


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


def test_rollback_to_keeps_the_named_migration(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url, Migrator(url) as migrator:
        ids = migrator.apply()
        assert migrator.rollback(to=ids[1]) == list(reversed(ids[2:]))
        assert [s.id for s in migrator.states() if s.applied] == ids[:2]
        assert migrator.apply(to=ids[2]) == [ids[2]]
        assert migrator.rollback() == [ids[2]]
