"""Migrating a database the application is writing, with real sessions holding real locks: a
long reader, a steady writer, a migrator with short lock timeouts and retries.

The writers' latencies are compared with the migrator's lock_timeout (the bound the retries
promise), never with a wall-clock target."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.errors import GuardError
from guard.resources import migrations_dir
from guard.schema.lock_retry import LockDeadlineExceeded, LockPolicy
from guard.schema.migrate import Migrator, OutOfOrderError
from guard.schema.validate import validate
from tests.support.migrations import shipped_migrations
from tests.support.queries import execute, fetch_one
from tests.support.writer import Writer

# The first migration that locks the booking tables (constraints and triggers on calls).
BEFORE_LOCKING = "0005_tenant_key"
LOCKING = "0006_invariants"


@contextmanager
def _reader_holding_calls(url: str, application_name: str) -> Iterator[psycopg.Connection[Any]]:
    """A BI session with a transaction open on calls (ACCESS SHARE until it ends)."""
    with psycopg.connect(url, application_name=application_name) as reader:
        reader.execute("SELECT count(*) FROM public.calls").fetchone()
        yield reader
        reader.rollback()


def _prepared(url: str) -> None:
    with Migrator(url) as migrator:
        migrator.apply(to=BEFORE_LOCKING)
    execute(
        url,
        "INSERT INTO public.companies (id, name) VALUES (1, 'a')",
        "INSERT INTO public.calls (company_id) SELECT 1 FROM generate_series(1, 500)",
    )


def _applied(url: str) -> set[str]:
    with Migrator(url) as migrator:
        return {s.id for s in migrator.states() if s.applied}


@pytest.mark.serial
def test_apply_waits_out_a_long_reader_and_writers_never_wait_longer_than_one_attempt(
    empty_db_url: str,
) -> None:
    _prepared(empty_db_url)
    policy = LockPolicy(lock_timeout_ms=200, deadline_s=120)
    progress: list[str] = []
    # The application: one insert into calls every 20 ms.
    writer = Writer(
        empty_db_url,
        "INSERT INTO public.calls (company_id, direction) VALUES (1, 'inbound')",
        pause_s=0.02,
    )
    writer.start()
    holding_s = 4.0
    try:
        with _reader_holding_calls(empty_db_url, "bi-dashboard") as reader:
            reader_pid = reader.info.backend_pid
            released_at: list[float] = []

            def release() -> None:
                time.sleep(holding_s)
                released_at.append(time.monotonic())
                reader.rollback()

            releaser = threading.Thread(target=release)
            with Migrator(empty_db_url, lock_policy=policy, progress=progress.append) as m:
                releaser.start()
                applied = m.apply()
                finished = time.monotonic()
            releaser.join()
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    assert writer.error is None, writer.error

    assert LOCKING in applied and applied[-1] == sorted(applied)[-1]
    assert finished > released_at[0], "it could not have locked calls while the reader held it"
    # While it waited, it said who blocked it.
    assert any(
        f"blocked by pid {reader_pid} ('bi-dashboard'" in line and "calls" in line
        for line in progress
    ), progress
    # The application kept writing the whole time, and no insert waited longer than one attempt
    # could have made it wait (its lock_timeout), plus the insert's own time on a busy machine.
    # Blocked for the whole hold it would have made one insert; at least one per lock timeout
    # leaves room for a loaded machine's scheduling (idle, it makes about one per 25 ms).
    during = [latency for started, latency in writer.samples if started < released_at[0]]
    per_timeout = holding_s / (policy.lock_timeout_ms / 1000)
    assert len(during) > per_timeout, "the writer was not blocked for long stretches"
    worst = writer.worst
    assert worst < 2 * policy.lock_timeout_ms / 1000, f"worst insert {worst * 1000:.0f} ms"


def test_exhausted_deadline_changes_nothing_and_names_the_blocker(empty_db_url: str) -> None:
    _prepared(empty_db_url)
    policy = LockPolicy(lock_timeout_ms=100, deadline_s=1.5)
    with (
        _reader_holding_calls(empty_db_url, "bi-dashboard") as reader,
        Migrator(empty_db_url, lock_policy=policy) as migrator,
        pytest.raises(LockDeadlineExceeded) as raised,
    ):
        reader_pid = reader.info.backend_pid
        migrator.apply()
    message = str(raised.value)
    assert f"applying {LOCKING}: gave up after" in message
    assert f"blocked by pid {reader_pid} ('bi-dashboard'" in message
    assert "on calls" in message and "nothing of it was changed" in message
    assert LOCKING not in _applied(empty_db_url)
    leftovers = fetch_one(
        empty_db_url,
        "SELECT (SELECT count(*) FROM pg_constraint WHERE conname LIKE 'guard\\_calls\\_%%'),"
        " (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.calls'::regclass"
        "   AND NOT tgisinternal),"
        " (SELECT count(*) FROM guard.rules),"
        " (SELECT count(*) FROM guard.migration_checksums WHERE migration_id = %s)",
        (LOCKING,),
    )
    assert leftovers == (0, 0, 0, 0)


@pytest.mark.history
def test_out_of_order_apply_is_refused(db_url: str, tmp_path: Path) -> None:
    """Plain yoyo rolls back only the migration it is given: a gap. `guard db apply` must not fill
    it with a migration older than the ones after it. The database starts with every migration
    applied (a clone of the template, built from the same files)."""
    directory = shipped_migrations(tmp_path)
    with Migrator(db_url, directory) as migrator:
        assert migrator.apply() == [], "the template has every migration of the copy"
    ids = sorted(p.stem for p in directory.glob("*.sql") if ".rollback" not in p.name)
    # A gap whose objects no later migration touches: rolled back out of order, a migration
    # whose later ones replace its objects leaves their rollbacks restoring what it had dropped,
    # and no tool can undo that order.
    gap, newest = "0022b_operator_alerts_index", ids[-1]
    before_gap = ids[ids.index(gap) - 1]
    yoyo = Path(sys.executable).with_name("yoyo")
    subprocess.run(
        [
            str(yoyo),
            "rollback",
            "--batch",
            "--database",
            db_url.replace("postgresql://", "postgresql+psycopg://"),
            "-r",
            gap,
            str(directory),
        ],
        check=True,
        capture_output=True,
    )
    assert gap not in _applied(db_url) and newest in _applied(db_url)

    with Migrator(db_url, directory) as migrator, pytest.raises(OutOfOrderError) as raised:
        migrator.apply()
    assert f"refusing to apply {gap} out of order: {newest}" in str(raised.value)
    assert f"guard db rollback --to {before_gap}" in str(raised.value)
    assert gap not in _applied(db_url)

    # The way out it names works.
    with Migrator(db_url, directory) as migrator:
        migrator.rollback(to=before_gap)
        assert migrator.apply() == ids[ids.index(gap) :]


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.history
def test_rollback_without_terminal_and_without_yes_drops_nothing(db_url: str) -> None:
    execute(
        db_url,
        "INSERT INTO public.companies (id, name) VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO public.calls (company_id) SELECT 1 FROM generate_series(1, 7)",
    )
    before = _applied(db_url)

    code, out, err = _cli("--database-url", db_url, "db", "rollback", "--all")

    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("guard: error: not rolling back without confirmation")
    assert "--yes" in err.splitlines()[-1]
    # It showed what it would have dropped, with the rows.
    assert "  public.calls  (7 rows)" in err
    assert "  public.companies  (2 rows)" in err
    assert _applied(db_url) == before
    assert fetch_one(db_url, "SELECT count(*) FROM public.calls") == (7,)

    code, out, err = _cli("--database-url", db_url, "db", "rollback", "--all", "--yes")
    assert code == 0, err
    assert _applied(db_url) == set()
    assert fetch_one(db_url, "SELECT to_regclass('public.calls')") == (None,)


@pytest.mark.parametrize(
    "command",
    [
        ("db", "status"),
        ("db", "apply"),
        ("db", "verify"),
        ("db", "validate"),
        ("db", "rollback"),  # refused (no terminal), but only after naming the target
    ],
)
def test_every_db_command_names_its_target_first(db_url: str, command: tuple[str, ...]) -> None:
    params = psycopg.conninfo.conninfo_to_dict(db_url)
    with_password = psycopg.conninfo.make_conninfo(db_url, password="s3cret")
    _, _, err = _cli("--database-url", with_password, *command)
    first = err.splitlines()[0]
    assert first == (
        f"target: host {params['host']}, port {params['port']},"
        f" database {params['dbname']}, role {params['user']}"
    )
    assert "s3cret" not in err


def test_a_migration_cannot_lengthen_its_own_lock_timeout(
    empty_db_url: str, tmp_path: Path
) -> None:
    """The migrator owns the timeouts: a migration's own SET is overridden for what follows."""
    directory = shipped_migrations(
        tmp_path,
        {
            "0950_own_timeouts.sql": (
                "SET LOCAL lock_timeout = '5s';\n\n"
                "SET LOCAL statement_timeout = 0;\n\n"
                "CREATE TABLE guard.seen_timeouts AS\n"
                "SELECT current_setting('lock_timeout') AS lock_timeout,\n"
                "    current_setting('statement_timeout') AS statement_timeout;\n"
            ),
            "0950_own_timeouts.rollback.sql": "DROP TABLE guard.seen_timeouts;\n",
        },
    )
    policy = LockPolicy(lock_timeout_ms=150, statement_timeout_ms=7000)
    with Migrator(empty_db_url, directory, lock_policy=policy) as migrator:
        migrator.apply()
    seen = fetch_one(empty_db_url, "SELECT * FROM guard.seen_timeouts")
    assert seen == ("150ms", "7s")


def test_validate_retries_its_exclusive_step_and_gives_up_naming_the_blocker(
    empty_db_url: str,
) -> None:
    """SET NOT NULL on calls.direction needs ACCESS EXCLUSIVE: with a reader that never ends,
    validate retries and then names the reader; VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)
    does not conflict with the reader and gets done meanwhile."""
    with Migrator(empty_db_url) as migrator:
        migrator.apply()
    execute(
        empty_db_url,
        "INSERT INTO public.companies (id, name) VALUES (1, 'a')",
        "ALTER TABLE public.calls ALTER COLUMN direction DROP NOT NULL",
        "ALTER TABLE public.calls DROP CONSTRAINT guard_calls_direction_check",
        "SET session_replication_role = replica",
        (
            "INSERT INTO public.calls (company_id, direction, customer_link_status)"
            " SELECT 1, NULL, 'unlinked' FROM generate_series(1, 200)"
        ),
        (
            "ALTER TABLE public.calls ADD CONSTRAINT guard_calls_direction_check"
            " CHECK (direction IS NOT NULL AND direction IN ('inbound', 'outbound')) NOT VALID"
        ),
    )
    policy = LockPolicy(lock_timeout_ms=100, deadline_s=1.5)
    progress: list[str] = []
    with (
        _reader_holding_calls(empty_db_url, "bi-dashboard") as reader,
        pytest.raises(LockDeadlineExceeded) as raised,
    ):
        reader_pid = reader.info.backend_pid
        validate(empty_db_url, progress=progress.append, lock_policy=policy)
    message = str(raised.value)
    assert message.startswith("setting calls.direction NOT NULL: gave up after")
    assert f"blocked by pid {reader_pid} ('bi-dashboard'" in message
    assert "validated  calls.guard_calls_direction_check" in progress
    not_null = fetch_one(
        empty_db_url,
        "SELECT attnotnull FROM pg_attribute"
        " WHERE attrelid = 'public.calls'::regclass AND attname = 'direction'",
    )
    assert not_null == (False,)


def _rollback_on_a_terminal(url: str, answer: str) -> tuple[int, str]:
    """`guard db rollback` with a real pseudo-terminal as stdin, answering the question."""
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "--database-url", url, "db", "rollback"],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(primary, answer.encode() + b"\n")
        _, err = process.communicate(timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    return process.returncode, err


def test_rollback_on_a_terminal_asks_and_no_means_nothing_changes(db_url: str) -> None:
    newest = max(_applied(db_url))
    code, err = _rollback_on_a_terminal(db_url, "n")
    assert code == 1 and "Roll back and drop all of the above? [y/N]" in err
    assert err.splitlines()[-1].endswith("guard: error: rollback cancelled; nothing was changed")
    assert newest in _applied(db_url)

    code, err = _rollback_on_a_terminal(db_url, "y")
    assert code == 0, err
    assert newest not in _applied(db_url)


def test_statement_timeout_stops_a_slow_statement_and_nothing_is_applied(
    empty_db_url: str, tmp_path: Path
) -> None:
    directory = shipped_migrations(
        tmp_path,
        {
            "0951_slow.sql": "CREATE TABLE guard.slow_leftover (id int);\n\nSELECT pg_sleep(5);\n",
        },
    )
    policy = LockPolicy(statement_timeout_ms=300)
    with (
        Migrator(empty_db_url, directory, lock_policy=policy) as migrator,
        pytest.raises(GuardError, match=r"0951_slow failed .* statement timeout .* 300 ms"),
    ):
        migrator.apply()
    assert "0951_slow" not in _applied(empty_db_url)
    assert fetch_one(empty_db_url, "SELECT to_regclass('guard.slow_leftover')") == (None,)


def test_rollbacks_the_preview_cannot_run_drop_no_table_and_no_column() -> None:
    """`guard db rollback` previews the tables and columns a rollback drops by running the
    rollbacks in a transaction it discards; those of `-- transactional: false` migrations cannot
    run there and are only named, with the promise that they drop neither (guard/cli/db.py)."""
    statement_by_statement = [
        path.with_name(path.name.removesuffix(".sql") + ".rollback.sql")
        for path in sorted(Path(migrations_dir()).glob("*.sql"))
        if not path.name.endswith(".rollback.sql")
        and path.read_text().startswith("-- transactional: false")
    ]
    assert len(statement_by_statement) >= 5, "the non-transactional rollbacks were not found"
    dropping = re.compile(r"\bDROP\s+(TABLE|COLUMN|SCHEMA|VIEW|MATERIALIZED\s+VIEW)\b", re.I)
    offenders = [path.name for path in statement_by_statement if dropping.search(path.read_text())]
    assert offenders == []


def test_a_concurrent_index_build_waits_out_a_writer_within_the_deadline(
    db_url: str, tmp_path: Path
) -> None:
    """CREATE INDEX CONCURRENTLY waits for the writers of its table without blocking anyone, so
    it waits up to the migration's deadline, not one short lock_timeout: cut short, it would
    leave an INVALID index that IF NOT EXISTS then takes for built."""
    directory = shipped_migrations(
        tmp_path,
        {
            "0900_index.sql": (
                "-- transactional: false\n\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS calls_waiting_idx"
                " ON public.calls (created_at);\n"
            ),
            "0900_index.rollback.sql": (
                "-- transactional: false\n\n"
                "DROP INDEX CONCURRENTLY IF EXISTS public.calls_waiting_idx;\n"
            ),
        },
    )
    policy = LockPolicy(lock_timeout_ms=100, deadline_s=60)
    with psycopg.connect(db_url, application_name="writer") as writer:
        # a writer's transaction on calls (ROW EXCLUSIVE until it ends)
        writer.execute("UPDATE public.calls SET direction = direction WHERE FALSE")
        released_at: list[float] = []

        def release() -> None:
            time.sleep(1.5)
            released_at.append(time.monotonic())
            writer.rollback()

        releaser = threading.Thread(target=release)
        with Migrator(db_url, directory, lock_policy=policy) as migrator:
            releaser.start()
            applied = migrator.apply()
            finished = time.monotonic()
        releaser.join()
    assert applied == ["0900_index"]
    assert finished > released_at[0], "the build could not end before the writer's transaction"
    valid = fetch_one(
        db_url,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.calls_waiting_idx'::regclass",
    )
    assert valid == (True,)
