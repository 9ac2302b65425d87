"""Faults around migrations are real: a migrator killed with SIGKILL, a concurrent migrator, a
migration that fails half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from guard.errors import GuardError
from guard.schema.migrate import Migrator
from guard.schema.releases import checksum
from tests.support.migrations import shipped_migrations
from tests.support.polling import wait_for
from tests.support.queries import execute, fetch_one

SLOW_MIGRATION = """
-- Sleeps only when the session asks for it, so the re-run after the kill is quick.
CREATE TABLE guard.slow_marker (id int);

SELECT pg_sleep(CASE WHEN current_setting('guard_test.slow', true) = 'on' THEN 60 ELSE 0 END);
"""


@pytest.fixture
def migrations_with_slow_one(tmp_path: Path) -> Path:
    return shipped_migrations(
        tmp_path,
        {
            "0900_slow.sql": SLOW_MIGRATION,
            "0900_slow.rollback.sql": "DROP TABLE guard.slow_marker;\n",
        },
    )


def _guard_apply(url: str, directory: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guard.cli",
            "--database-url",
            url,
            "db",
            "apply",
            "--migrations-dir",
            str(directory),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_migrator(url: str, where: str, what: str, timeout_s: float) -> None:
    """Until `guard db` has a statement in pg_stat_activity matching `where`."""
    wait_for(
        lambda: fetch_one(
            url,
            "SELECT count(*) > 0 FROM pg_stat_activity"
            f" WHERE application_name = 'guard db' AND {where}",
        )[0],
        timeout_s,
        what,
    )


def _wait_for_sleeping_migrator(url: str) -> None:
    _wait_for_migrator(
        url,
        "query LIKE '%%pg_sleep%%' AND state = 'active'",
        "the migrator to reach its slow statement",
        timeout_s=30,
    )


def test_kill_9_mid_apply_leaves_no_lock(db_url: str, migrations_with_slow_one: Path) -> None:
    victim = _guard_apply(db_url, migrations_with_slow_one, PGOPTIONS="-c guard_test.slow=on")
    _wait_for_sleeping_migrator(db_url)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    started = time.monotonic()
    rerun = _guard_apply(db_url, migrations_with_slow_one)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    assert b"applied  0900_slow" in out
    # The server notices the dead client within client_connection_check_interval (1 s): the
    # re-run must not have waited for the 60 s sleep to end.
    assert time.monotonic() - started < 30
    with Migrator(db_url, migrations_with_slow_one) as migrator:
        assert all(s.applied and not s.edited for s in migrator.states())
    leftover = fetch_one(db_url, "SELECT count(*) FROM yoyo_lock")
    assert leftover == (0,)


def test_second_migrator_waits_then_names_the_holder(
    db_url: str, migrations_with_slow_one: Path
) -> None:
    holder = _guard_apply(db_url, migrations_with_slow_one, PGOPTIONS="-c guard_test.slow=on")
    try:
        _wait_for_sleeping_migrator(db_url)
        with (
            Migrator(db_url, migrations_with_slow_one, lock_timeout_s=1) as second,
            pytest.raises(
                GuardError, match=r"another migrator is running: server pid \d+ \(guard db"
            ),
        ):
            second.apply()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_failing_migration_changes_nothing(db_url: str, tmp_path: Path) -> None:
    directory = shipped_migrations(
        tmp_path,
        {
            # applied in the same run as the broken one, before it
            "0900_fine.sql": "CREATE TABLE guard.fine (id int);\n",
            "0901_broken.sql": "CREATE TABLE guard.half_done (id int);\n\nSELECT 1 / 0;\n",
        },
    )
    with Migrator(db_url, directory) as migrator:
        with pytest.raises(
            GuardError, match=r"migration 0901_broken failed and was not applied: division by zero"
        ):
            migrator.apply()
        states = {s.id: s.applied for s in migrator.states()}
    assert states.pop("0901_broken") is False
    assert all(states.values()), "the migrations before the broken one stay applied"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('guard.fine')").fetchone() == ("guard.fine",)
        row = conn.execute("SELECT to_regclass('guard.half_done')").fetchone()
        assert row == (None,)
        recorded = conn.execute(
            "SELECT count(*) FROM guard.migration_checksums WHERE migration_id = '0901_broken'"
        ).fetchone()
        assert recorded == (0,)


def test_a_migration_s_notices_are_told_and_the_server_s_remarks_are_not(
    db_url: str, tmp_path: Path
) -> None:
    """What a migration RAISEs on purpose reaches the operator, prefixed by its id; the server's
    own remarks (42P07, 'already exists, skipping') do not."""
    directory = shipped_migrations(
        tmp_path,
        {
            "0900_says.sql": (
                "DO $$ BEGIN RAISE NOTICE 'step one done';"
                " RAISE WARNING 'step two skipped'; END $$;\n\n"
                "CREATE TABLE IF NOT EXISTS guard.settings (key text);\n"
            ),
            "0900_says.rollback.sql": "SELECT 1;\n",
        },
    )
    told: list[str] = []
    with Migrator(db_url, directory, progress=told.append) as migrator:
        migrator.apply()
    assert [line for line in told if line.startswith("0900_says: ")] == [
        "0900_says: notice: step one done",
        "0900_says: warning: step two skipped",
    ]


@pytest.mark.history  # the re-run of 0003 within the history's replay is what it checks
def test_interrupted_concurrent_index_build_is_rebuilt(empty_db_url: str) -> None:
    """An INVALID index left by an interrupted CREATE INDEX CONCURRENTLY is dropped and built
    again by re-running 0003, instead of being skipped by IF NOT EXISTS."""
    with Migrator(empty_db_url) as migrator:
        migrator.apply(to="0002_booking_tables")
    execute(
        empty_db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'a')",
        "INSERT INTO calls (company_id, retell_call_id) VALUES (1, 'x'), (1, 'y')",
        "CREATE INDEX guard_calls_created_at_idx ON public.calls (created_at)",
        (
            "UPDATE pg_index SET indisvalid = false"
            " WHERE indexrelid = 'public.guard_calls_created_at_idx'::regclass"
        ),
    )
    with Migrator(empty_db_url) as migrator:
        migrator.apply()
    valid = fetch_one(
        empty_db_url,
        "SELECT indisvalid FROM pg_index"
        " WHERE indexrelid = 'public.guard_calls_created_at_idx'::regclass",
    )
    assert valid == (True,)


def _wait_until_no_migrator(url: str) -> None:
    wait_for(
        lambda: fetch_one(
            url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'guard db'"
        )[0],
        30,
        "the killed migrator's session to end",
    )


def test_kill_9_between_a_migration_and_its_bookkeeping(db_url: str, tmp_path: Path) -> None:
    """The window between a migration's own statements and the record that it ran: a migrator
    killed there must leave neither (one transaction), never a schema change that the next run
    would apply a second time. The bookkeeping write is made to hang so the kill lands in it."""
    directory = shipped_migrations(
        tmp_path,
        {
            "0902_crash_window.sql": "CREATE TABLE guard.crash_window (id int);\n",
            "0902_crash_window.rollback.sql": "DROP TABLE guard.crash_window;\n",
        },
    )
    execute(
        db_url,
        (
            "CREATE FUNCTION public.hang_bookkeeping() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN PERFORM pg_sleep(60); RETURN NEW; END; $$"
        ),
        (
            "CREATE TRIGGER hang BEFORE INSERT ON guard.migration_checksums FOR EACH ROW"
            " WHEN (NEW.migration_id = '0902_crash_window')"
            " EXECUTE FUNCTION public.hang_bookkeeping()"
        ),
    )
    victim = _guard_apply(db_url, directory)
    _wait_for_migrator(
        db_url,
        "wait_event = 'PgSleep' AND query LIKE '%%migration_checksums%%'",
        "the migrator to reach the bookkeeping of 0902_crash_window",
        timeout_s=60,
    )
    assert fetch_one(db_url, "SELECT to_regclass('guard.crash_window')") == (None,)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    _wait_until_no_migrator(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('guard.crash_window')").fetchone() == (None,)
        recorded = conn.execute(
            "SELECT count(*) FROM _yoyo_migration WHERE migration_id = '0902_crash_window'"
        ).fetchone()
        assert recorded == (0,), "neither the change nor its record survived the kill"
        conn.execute("DROP TRIGGER hang ON guard.migration_checksums")
    rerun = _guard_apply(db_url, directory)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    assert b"applied  0902_crash_window" in out


def test_the_checksum_covers_the_migration_and_its_rollback(tmp_path: Path) -> None:
    """`guard db verify` reports an applied migration whose files changed: a rollback edited
    after the migration was applied is a change too (the rollback is what `guard db rollback`
    will run)."""
    forward = tmp_path / "0001_x.sql"
    rollback = tmp_path / "0001_x.rollback.sql"
    forward.write_text("CREATE TABLE x ();\n")
    rollback.write_text("DROP TABLE x;\n")
    original = checksum(forward)
    rollback.write_text("DROP TABLE x CASCADE;\n")
    edited_rollback = checksum(forward)
    forward.write_text("CREATE TABLE x (a int);\n")
    assert len({original, edited_rollback, checksum(forward)}) == 3
    rollback.unlink()
    assert checksum(forward) != edited_rollback, "a deleted rollback is a change as well"
