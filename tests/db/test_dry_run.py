"""`guard db apply --dry-run`: prints the SQL of every pending migration and every changed
definition, in the order apply runs them, and changes nothing. Each test compares the catalog
snapshot (guard.schema.catalog.take) and the migration records before and after a dry run, and
checks the plan against what a real apply then does."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.resources import sql_dir
from guard.schema import catalog, definitions
from guard.schema.migrate import LOCK_NAME, Migrator

RECORDS = {
    "_yoyo_migration": "SELECT migration_id, applied_at_utc FROM _yoyo_migration",
    "guard.migration_checksums": "SELECT * FROM guard.migration_checksums",
    "guard.definitions": "SELECT * FROM guard.definitions",
}
# The line before each migration's SQL (a migration's own comments may start "-- migration").
_HEADER = re.compile(r"^-- migration (\S+) \((?:one transaction|not transactional)")


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    """A copy of sql/ to change, as a developer changes the checkout."""
    copy = tmp_path / "sql"
    shutil.copytree(sql_dir(), copy)
    return copy


def _state(url: str) -> tuple[catalog.Snapshot, dict[str, Any]]:
    """The catalog snapshot and every migration record (None: the table does not exist)."""
    with psycopg.connect(url, autocommit=True) as conn:
        snapshot = catalog.take(conn)
        records: dict[str, Any] = {}
        for table, query in RECORDS.items():
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            records[table] = sorted(conn.execute(query).fetchall()) if exists == (True,) else None
    return snapshot, records


def _dry_run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--database-url", url, "db", "apply", "--dry-run", *args])
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stdout, result.stderr


def _add_to_manifest(sql_copy: Path, *paths: str) -> None:
    manifest = sql_copy / "manifest.txt"
    manifest.write_text(manifest.read_text() + "".join(f"{p}\n" for p in paths))


def test_on_an_empty_database_it_prints_the_install_and_creates_nothing(
    empty_db_url: str,
) -> None:
    before = _state(empty_db_url)

    code, out, _ = _dry_run(empty_db_url)

    assert code == 0, out
    assert _state(empty_db_url) == before, "the dry run changed the database"
    assert before[1]["_yoyo_migration"] is None, "not even yoyo's bookkeeping table is created"
    with Migrator(empty_db_url) as migrator:
        ids = [m.id for m in migrator.migrations()]
        names = [name for name, _ in migrator.install_files()]
    assert [line[3:] for line in out.splitlines() if line[3:] in names] == names
    assert not any(_HEADER.match(line) for line in out.splitlines()), "installed, not replayed"
    assert "CREATE SCHEMA" in out
    # guard.definitions does not exist yet: every file of sql/ would run after the install
    files = definitions.checkout_definitions()
    objects = [d for d in files if not d.closing]
    assert (
        f"{len(ids)} migration(s), {len(objects)} definition file(s) and"
        f" {len(files) - len(objects)} files of registry rows, grants, schedule and comments to run"
    ) in out
    with Migrator(empty_db_url, install_when_empty=True) as migrator:
        migrator.apply()
        outcome = migrator.definitions_outcome
    assert outcome is not None, "apply counts what its dry run counted"
    assert (len(outcome.applied), outcome.closing) == (len(objects), len(files) - len(objects))


def test_on_an_empty_database_to_prints_every_migration_up_to_it(empty_db_url: str) -> None:
    with Migrator(empty_db_url) as migrator:
        ids = [m.id for m in migrator.migrations()]

    code, out, _ = _dry_run(empty_db_url, "--to", ids[-2])

    assert code == 0, out
    headers = [_HEADER.match(line) for line in out.splitlines()]
    assert [header.group(1) for header in headers if header] == ids[:-1]
    assert "CREATE SCHEMA" in out


def test_to_plans_what_apply_to_applies(empty_db_url: str) -> None:
    """--to ID: the migrations up to ID, and no definitions at a level between releases (it keeps
    what it has), as `apply --to` does."""
    stop = "0003_booking_indexes"

    with Migrator(empty_db_url) as migrator:
        plan = migrator.plan_apply(stop)
        applied = migrator.apply(stop)

    assert (
        [m.id for m in plan.migrations]
        == applied
        == [
            "0001_guard_schema",
            "0002_booking_tables",
            stop,
        ]
    )
    assert not plan.migrations[-1].transactional, "0003 builds its indexes CONCURRENTLY"
    assert plan.definitions is None


def test_a_pending_migration_is_printed_and_then_applied_as_shown(db_url: str) -> None:
    with Migrator(db_url) as migrator:
        [newest] = migrator.rollback()
        statements = [m for m in migrator.migrations() if m.id == newest]
    before = _state(db_url)

    code, out, _ = _dry_run(db_url)

    assert code == 0, out
    assert _state(db_url) == before, "the dry run changed the database"
    assert f"-- migration {newest} (" in out
    sql_lines = [
        line
        for line in Path(statements[0].path).read_text().splitlines()
        if line.strip() and not line.startswith("--")
    ]
    assert sql_lines[0] in out, "the migration's own SQL is printed"
    assert "-- dry run: 1 migration(s)" in out and "Nothing was changed." in out
    # a migration ran, so the grants, the schedule and the comments run after it
    assert "-- grants/role_grants.sql: grants, runs whenever anything is applied" in out
    with Migrator(db_url) as migrator:
        assert migrator.apply() == [newest]
    code, out, _ = _dry_run(db_url)
    assert (code, out) == (0, "Nothing to apply: the database is up to date.\n")


def test_a_definition_missing_from_the_database_is_printed_with_its_sql(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP VIEW guard.kpis")
    before = _state(db_url)

    code, out, _ = _dry_run(db_url)

    assert code == 0, out
    assert _state(db_url) == before, "the dry run changed the database"
    assert "-- definitions from sql/ (in a transaction of their own)" in out
    assert "-- views/guard.kpis.sql: view guard.kpis, missing from the database" in out
    assert "CREATE OR REPLACE VIEW guard.kpis" in out
    # the grants, the schedule and the comments run whenever anything is applied, after it
    assert out.index("views/guard.kpis.sql") < out.index("-- grants/role_grants.sql")
    closing = [d for d in definitions.checkout_definitions() if d.closing]
    assert (
        f"-- dry run: 0 migration(s), 1 definition file(s) and {len(closing)} files of registry"
        " rows, grants, schedule and comments to run,"
    ) in out
    with Migrator(db_url) as migrator:
        migrator.apply()
        outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.applied == ["views/guard.kpis.sql"]
    assert outcome.closing == len(closing), "apply counts what its dry run counted"


def test_check_views_recorded_under_sql_detection_are_planned_as_moved(db_url: str) -> None:
    """A database applied while the check views were under sql/detection/: the apply moves
    their records and runs nothing; the dry run says so instead of "Nothing to apply"."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.definitions SET path = replace(path, 'checks/', 'detection/')"
            " WHERE path LIKE 'checks/%'"
        )
    before = _state(db_url)

    code, out, _ = _dry_run(db_url)

    assert code == 0, out
    assert _state(db_url) == before, "the dry run changed the database"
    moved = [d.path for d in definitions.checkout_definitions() if d.path.startswith("checks/")]
    assert len(moved) >= 9
    for path in moved:
        old = path.replace("checks/", "detection/")
        assert f"-- {path}: unchanged, recorded as {old}: only the record moves" in out
    assert f", 0 to drop, {len(moved)} moved. Nothing was changed." in out
    with Migrator(db_url) as migrator:
        migrator.apply()
        outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.moved == moved, outcome


def test_a_changed_view_is_named_with_the_views_recreated_with_it(
    db_url: str, sql_copy: Path
) -> None:
    base, top, gone = "views/guard.test_base.sql", "views/guard.test_top.sql", "views/guard.x.sql"
    (sql_copy / base).write_text("CREATE OR REPLACE VIEW guard.test_base AS SELECT 1 AS one, 2;\n")
    (sql_copy / top).write_text(
        "CREATE OR REPLACE VIEW guard.test_top AS SELECT b.one FROM guard.test_base AS b;\n"
    )
    (sql_copy / gone).write_text("CREATE OR REPLACE VIEW guard.x AS SELECT 1 AS one;\n")
    _add_to_manifest(sql_copy, base, top, gone)
    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        migrator.apply()
    # CREATE OR REPLACE cannot drop a column: apply drops test_base and test_top, creates both
    (sql_copy / base).write_text("CREATE OR REPLACE VIEW guard.test_base AS SELECT 1 AS one;\n")
    (sql_copy / gone).unlink()
    manifest = sql_copy / "manifest.txt"
    manifest.write_text(manifest.read_text().replace(f"{gone}\n", ""))
    before = _state(db_url)

    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        plan = migrator.plan_apply()

    assert _state(db_url) == before, "the dry run changed the database"
    assert plan.migrations == []
    step = plan.definitions
    assert step is not None
    run = {path: why for (d, why) in step.run for path in [d.path]}
    assert run[base] == "changed since it was applied"
    assert top not in run, "its file did not change: it runs again only if test_base is dropped"
    assert step.recreated_if_refused == {base: [top]}
    assert step.stopped_by == {}
    assert step.dropped == [(gone, "view guard.x", ['DROP VIEW IF EXISTS "guard"."x"'])]
    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        migrator.apply()
        outcome = migrator.definitions_outcome
    assert outcome is not None
    assert (outcome.applied, outcome.recreated, outcome.dropped) == ([base], [top], [gone])


def test_a_dbas_view_on_a_changed_view_is_named_as_what_would_stop_the_apply(
    db_url: str, sql_copy: Path
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.bi_kpis AS SELECT * FROM guard.kpis")
    (sql_copy / "views/guard.kpis.sql").write_text(
        "CREATE OR REPLACE VIEW guard.kpis AS SELECT 1 AS only_column;\n"
    )

    with Migrator(db_url, sql_directory=sql_copy) as migrator:
        plan = migrator.plan_apply()

    assert plan.definitions is not None
    assert plan.definitions.stopped_by == {"views/guard.kpis.sql": ["rule _RETURN on view bi_kpis"]}


def test_it_waits_for_nobody_holding_the_migration_lock_and_blocks_no_writer(db_url: str) -> None:
    """Another migrator holds the advisory lock and a session holds guard.definitions: the dry
    run does not wait for the lock, and while it waits to read guard.definitions it holds only
    ACCESS SHARE locks, which block no writer."""
    with Migrator(db_url) as migrator:
        migrator.rollback()
    held: list[tuple[str, str, bool]] = []
    result: dict[str, Any] = {}
    with (
        psycopg.connect(db_url, autocommit=True) as migrator_session,
        psycopg.connect(db_url) as holder,
        psycopg.connect(db_url, autocommit=True) as observer,
    ):
        migrator_session.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (LOCK_NAME,))
        holder.execute("LOCK TABLE guard.definitions IN ACCESS EXCLUSIVE MODE")

        def dry_run() -> None:
            result["run"] = _dry_run(db_url)

        thread = threading.Thread(target=dry_run)
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not held:
            rows = observer.execute(
                "SELECT l.locktype, l.mode, l.granted FROM pg_locks AS l"
                " JOIN pg_stat_activity AS a ON a.pid = l.pid"
                " WHERE a.application_name = 'guard db' AND a.datname = current_database()"
            ).fetchall()
            if any(not granted for *_, granted in rows):
                held = rows
            time.sleep(0.05)
        holder.rollback()
        thread.join(timeout=60)
    assert held, "the dry run never waited for guard.definitions"
    granted = {(kind, mode) for kind, mode, granted in held if granted and kind != "virtualxid"}
    assert granted == {("relation", "AccessShareLock")}
    code, out, err = result["run"]
    assert code == 0, out + err
    assert "-- dry run: 1 migration(s)" in out
    assert "note: a migrator is running now" in err
