"""The database built from the migrations is the database the canonical sql/ files describe, and
the stored snapshot that `guard db verify` uses is that database's snapshot."""

from __future__ import annotations

import psycopg
import pytest

from devtools import snapshot
from devtools.throwaway import build_from_canonical
from guard.resources import canonical_files, snapshot_path, sql_dir
from guard.schema import catalog, definitions
from guard.schema.drift import compare
from guard.schema.migrate import Migrator
from tests.support.postgres import Cluster
from tests.support.queries import fetch_one


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


# What `guard db apply` records besides the catalog, without times, ids and hosts.
_BOOKKEEPING = {
    "_yoyo_migration": "SELECT migration_id, migration_hash FROM _yoyo_migration",
    "_yoyo_log": "SELECT migration_id, operation, username FROM _yoyo_log",
    "guard.migration_checksums": "SELECT migration_id, sha256 FROM guard.migration_checksums",
    "guard.definitions": "SELECT path, kind, position, sha256, source FROM guard.definitions",
    "guard.baseline_objects": "SELECT table_name, column_name, created_by_guard"
    " FROM guard.baseline_objects",
    "guard.registry_rows": "SELECT registry, key, path FROM guard.registry_rows",
}
_ROW_COUNTS = (
    "SELECT format('SELECT %L, count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname,"
    " tablename) FROM pg_tables WHERE schemaname IN ('guard', 'public')"
)


def _state(url: str) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        state: dict[str, object] = {"catalog": catalog.take(conn)}
        for table, query in _BOOKKEEPING.items():
            state[table] = sorted(conn.execute(query).fetchall())
        counts = [conn.execute(q).fetchone() for (q,) in conn.execute(_ROW_COUNTS).fetchall()]
        state["row counts"] = sorted(counts)  # type: ignore[type-var]
        state["registries"] = conn.execute(_REGISTRY_ROWS).fetchall()
        state["rule stages"] = conn.execute(
            "SELECT id, stage FROM guard.rules ORDER BY id"
        ).fetchall()
    return state


def _one_transaction(url: str) -> bool:
    row = fetch_one(url, "SELECT count(DISTINCT applied_at) FROM guard.migration_checksums")
    return row == (1,)


def test_install_is_the_replayed_database(pg_cluster: Cluster) -> None:
    """`guard db apply` on an empty database builds it from sql/ in one transaction
    (install_when_empty): the same catalog, bookkeeping, rows and registries as applying every
    migration in turn, and so the same rollbacks."""
    with pg_cluster.database() as replayed, pg_cluster.database() as installed:
        with Migrator(replayed) as migrator:
            applied = migrator.apply()
        heard: list[str] = []
        with Migrator(installed, install_when_empty=True) as migrator:
            assert migrator.apply(on_applied=heard.append) == applied == heard
        assert _one_transaction(installed) and not _one_transaction(replayed)
        with psycopg.connect(replayed) as conn:
            assert definitions.rows_from_migrations() == snapshot.registry_rows_of_migrations(
                conn
            ), "the stored rows of the migrations are stale: run `make generated`"
        replay, install = _state(replayed), _state(installed)
    assert replay["guard.registry_rows"] and replay["guard.baseline_objects"]
    for part, value in replay.items():
        assert install[part] == value, part


def test_install_only_on_an_empty_database(pg_cluster: Cluster) -> None:
    """A database with a table of its own (an application's) is applied migration by
    migration: the baseline migration adopts what is there."""
    with pg_cluster.database() as url:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE public.notes (id int)")
        with Migrator(url, install_when_empty=True) as migrator:
            migrator.apply()
        assert not _one_transaction(url)


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
        # (the rows are checked against a replay in test_install_is_the_replayed_database)
        generated = snapshot.render(
            snapshot.take(url), snapshot.definitions_digest(), definitions.rows_from_migrations()
        )
    assert snapshot_path().read_text() == generated, (
        "guard/schema/canonical_snapshot.json is stale: run `make generated`"
    )


def test_every_canonical_file_is_in_the_manifest() -> None:
    listed = {path.resolve() for path in canonical_files()}
    on_disk = {path.resolve() for path in sql_dir().rglob("*.sql")}
    assert on_disk - listed == set(), "canonical files missing from sql/manifest*.txt"
    assert listed - on_disk == set(), "a manifest names files that do not exist"
    assert len(canonical_files()) == len(listed), "a file is listed twice"


def _roll_back_to_nothing_and_replay(migrator: Migrator, url: str, applied: list[str]) -> None:
    """Rolling back every migration returns `applied` in reverse and leaves an empty catalog;
    applying again applies them all."""
    assert migrator.rollback(all_=True) == list(reversed(applied))
    emptied = _snapshot(url)
    assert emptied["relations"] == {} and emptied["schemas"] == []
    assert migrator.apply() == applied


@pytest.mark.history
def test_apply_rollback_all_apply_gives_the_same_catalog(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url:
        with Migrator(url) as migrator:
            first_applied = migrator.apply()
            first = _snapshot(url)
            assert migrator.apply() == [], "a second apply must be a no-op"
            assert _snapshot(url) == first
            _roll_back_to_nothing_and_replay(migrator, url, first_applied)
        assert _snapshot(url) == first, _describe(first, _snapshot(url))


@pytest.mark.history
def test_an_install_rolls_back_to_nothing_and_replays(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url:
        with Migrator(url, install_when_empty=True) as migrator:
            applied = migrator.apply()
        assert _one_transaction(url)
        installed = _snapshot(url)
        with Migrator(url) as migrator:
            _roll_back_to_nothing_and_replay(migrator, url, applied)
        assert _snapshot(url) == installed, _describe(installed, _snapshot(url))


@pytest.mark.history
def test_rollback_to_keeps_the_named_migration(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url, Migrator(url) as migrator:
        ids = migrator.apply()
        assert migrator.rollback(to=ids[1]) == list(reversed(ids[2:]))
        assert [s.id for s in migrator.states() if s.applied] == ids[:2]
        assert migrator.apply(to=ids[2]) == [ids[2]]
        assert migrator.rollback() == [ids[2]]
