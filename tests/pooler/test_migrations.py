"""Issue 49, row 7: the migrator holds a session advisory lock while it works. Through a
transaction pooler that lock stayed on an idle server connection after `guard db rollback`
(a direct `guard db apply` then failed "another migrator is running"), and two applies through
the pooler did not exclude each other. The fix: `guard db apply`, `rollback` and `validate` see
the pooler (the backend pid psycopg was given is not `pg_backend_pid()`: PgBouncer hands out a
key of its own) and refuse in one line naming it, exit 1, before taking any lock. In session
mode too: the migrator cannot tell which mode a pooler runs in.

Prints its counts on one line (`pytest -s`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from guard.errors import GuardError
from guard.schema.migrate import Migrator
from guard.schema.validate import validate
from tests.pooler.conftest import BouncerFactory, advisory_locks, dbname, guard_cli
from tests.support.postgres import Cluster
from tests.support.queries import fetch_one

COMMANDS = {
    "apply": ("db", "apply"),
    "rollback": ("db", "rollback", "--yes"),
    "validate": ("db", "validate"),
}


def _applied(url: str) -> int:
    row = fetch_one(url, "SELECT count(*) FROM _yoyo_migration")
    assert row is not None
    return int(row[0])


def _apply(url: str) -> Any:
    with Migrator(url) as migrator:
        return migrator.apply()


def _rollback(url: str) -> Any:
    with Migrator(url) as migrator:
        return migrator.rollback()


IN_PROCESS: dict[str, Callable[[str], Any]] = {
    "apply": _apply,
    "rollback": _rollback,
    "validate": validate,
}


def test_apply_rollback_and_validate_refuse_a_transaction_pooler(
    db_url: str, bouncer: BouncerFactory, pg_cluster: Cluster
) -> None:
    """The guarantee of the slow test below, cheap enough for `make test` (issue 71): the same
    commands called in-process through a transaction pool, each refused with the one line that
    names the pooler, before any lock or change."""
    pooler = bouncer("transaction")
    url = pooler.url(pg_cluster.user, dbname(db_url))
    before = _applied(db_url)
    for command, run in IN_PROCESS.items():
        with pytest.raises(GuardError, match="goes through a connection pooler"):
            run(url)
        assert advisory_locks(db_url) == 0, command
        assert _applied(db_url) == before, command


@pytest.mark.slow
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_migration_through_a_pooler_is_refused_and_leaves_no_lock(
    db_url: str, bouncer: BouncerFactory, pool_mode: str, command: str
) -> None:
    pooler = bouncer(pool_mode)
    before = _applied(db_url)
    done = guard_cli(pooler.url("postgres", dbname(db_url)), *COMMANDS[command])
    errors = [line for line in done.stderr.splitlines() if line.startswith("guard: error:")]
    named = [line for line in errors if "pooler" in line]
    locks = advisory_locks(db_url)  # PgBouncer still holds the server connections it used
    changed = _applied(db_url) - before
    direct = guard_cli(db_url, "db", "apply")
    print(
        f"row 7: guard db {command} through a {pool_mode} pool: exit {done.returncode},"
        f" error lines {len(errors)} ({len(named)} naming the pooler), advisory locks left"
        f" {locks}, migrations changed {changed}; then a direct apply: exit {direct.returncode}"
    )
    assert done.returncode == 1, done.stdout[-300:] + done.stderr[-300:]
    assert len(errors) == len(named) == 1, done.stderr[-500:]
    assert "Traceback" not in done.stderr
    assert locks == 0
    assert changed == 0
    assert direct.returncode == 0, direct.stderr[-500:]


def test_a_dry_run_through_a_pooler_prints_the_plan_and_takes_no_lock(
    db_url: str, bouncer: BouncerFactory
) -> None:
    """A dry run only reads, in one READ ONLY transaction, and takes no advisory lock: it works
    through a transaction pooler, and says that the apply itself will need a direct connection."""
    done = guard_cli(db_url, "db", "rollback", "--yes")
    assert done.returncode == 0, done.stderr[-500:]
    before = _applied(db_url)
    pooler = bouncer("transaction")

    dry = guard_cli(pooler.url("postgres", dbname(db_url)), "db", "apply", "--dry-run")

    assert dry.returncode == 0, dry.stdout[-300:] + dry.stderr[-300:]
    assert "-- dry run: 1 migration(s)" in dry.stdout
    refusals = [line for line in dry.stderr.splitlines() if "would refuse" in line]
    assert len(refusals) == 1 and "direct connection" in refusals[0], dry.stderr[-500:]
    assert "Traceback" not in dry.stderr
    assert advisory_locks(db_url) == 0
    assert _applied(db_url) == before
