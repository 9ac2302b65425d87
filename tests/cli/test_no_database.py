"""No silent default database, and one line for a database without Booking Guard, for every
command of tests/cli/commands.py (the list test_every_command_is_walked keeps complete):

- with no database named (no --database-url, no GUARD_DATABASE_URL, none of libpq's PGHOST,
  PGHOSTADDR, PGPORT, PGDATABASE, PGUSER, PGSERVICE) every command is refused in one line that
  says so and names what libpq would have used (its local server's database named like the OS
  user, `root`, which is almost never Booking Guard's: a command told to "run guard db apply"
  there would create Booking Guard in the wrong database);
- against an empty database every command that needs Booking Guard's schema says, in one line,
  which database has none and to apply it, and changes nothing (a breaker command does not touch
  Redis first)."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from guard.cli import DATABASE_NOT_USED, main
from guard.demo.embedded import free_port
from tests.cli.commands import NOT_WALKED, command_lines, leaves
from tests.security.conftest import login_roles, seeded_url  # noqa: F401 (fixtures)

LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")
# `guard db` makes and inspects the schema: apply creates it, status lists what is pending,
# rollback has nothing to roll back, verify lists what is missing. Every other command needs it.
MAKES_OR_INSPECTS_THE_SCHEMA = {"db apply", "db rollback", "db status", "db verify"}


@pytest.fixture
def nothing_configured() -> dict[str, str | None]:
    """An environment (for CliRunner, which sets it around each command) that names no
    database. Should the refusal ever regress, libpq's default server is still never written to:
    it must be a standby (target_session_attrs), which a local primary is not, so the connection
    fails instead."""
    env: dict[str, str | None] = {name: None for name in (*LIBPQ_VARIABLES, "GUARD_DATABASE_URL")}
    return env | {
        "PGTARGETSESSIONATTRS": "standby",
        "PGCONNECT_TIMEOUT": "3",
        "GUARD_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens
        "GUARD_DEBUG": None,
    }


def _walk(db_url: str) -> list[tuple[str, list[str]]]:
    """Every walked command with its arguments (ids looked up in a Booking Guard database)."""
    lines = command_lines(db_url, "guard_test_nobody")
    assert {path for path, _ in lines} | set(NOT_WALKED) == set(leaves())
    return lines


def test_no_database_named_is_refused_in_one_line_by_every_command(
    db_url: str,
    nothing_configured: dict[str, str | None],
) -> None:
    lines = [(p, a) for p, a in _walk(db_url) if p not in DATABASE_NOT_USED]
    problems: list[str] = []
    for path, args in lines:
        result = CliRunner(env=nothing_configured).invoke(main, [*path.split(), *args])
        err = result.stderr
        if (
            result.exit_code != 2
            or result.stdout
            or err.count("\n") != 1
            or not err.startswith("guard: error: no database given: pass --database-url or set")
            or "does not fall back to libpq's default database" not in err
        ):
            problems.append(f"{path}: exit {result.exit_code}: {err.strip()[:200]!r}")
    print(f"{len(lines) - len(problems)} of {len(lines)} commands refused without a database")
    assert not problems, "\n".join(problems)

    # Help and the version need no database; one libpq variable is a choice made.
    helps = [["--version"], ["--help"], ["alerts", "list", "--help"], ["db", "apply", "--help"]]
    for argv in helps:
        result = CliRunner(env=nothing_configured).invoke(main, argv)
        assert result.exit_code == 0, (argv, result.output)
    params = conninfo_to_dict(db_url)
    env = dict(nothing_configured, PGTARGETSESSIONATTRS=None)
    env |= {"PGHOST": str(params["host"]), "PGPORT": str(params["port"])}
    env |= {"PGDATABASE": str(params["dbname"]), "PGUSER": str(params["user"])}
    result = CliRunner(env=env).invoke(main, ["alerts", "list", "--json"])
    assert result.exit_code == 0 and result.stderr == "", result.output


def _tables(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class AS c"
                " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
            ).fetchall()
        ]


def test_a_database_without_booking_guard_is_one_line_for_every_command(
    db_url: str, empty_db_url: str, nothing_configured: dict[str, str | None]
) -> None:
    params = conninfo_to_dict(empty_db_url)
    expected = (
        f"guard: error: database {params['host']}:{params['port']}/{params['dbname']} has no"
        " Booking Guard schema: run `guard db apply`\n"
    )
    env = dict(nothing_configured, PGTARGETSESSIONATTRS=None)
    walked = [
        (p, a)
        for p, a in _walk(db_url)
        if p not in MAKES_OR_INSPECTS_THE_SCHEMA and p not in DATABASE_NOT_USED
    ]
    problems: list[str] = []
    for path, args in walked:
        argv = ["--database-url", empty_db_url, *path.split(), *args]
        result = CliRunner(env=env).invoke(main, argv)
        if (result.exit_code, result.stdout, result.stderr) != (1, "", expected):
            problems.append(f"{path}: exit {result.exit_code}: {result.stderr.strip()[:200]!r}")
    print(f"{len(walked) - len(problems)} of {len(walked)} commands said to apply Booking Guard")
    assert not problems, "\n".join(problems)
    assert _tables(empty_db_url) == [], "a command changed the database without Booking Guard"


def test_a_schema_applied_in_part_says_to_apply_it(db_url: str) -> None:
    """A database whose Booking Guard schema lacks a table (applied in part, or older than this
    guard): the missing object and what to do, in one line, not the raw error alone."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE guard.review_items CASCADE")
    result = CliRunner().invoke(main, ["--database-url", db_url, "review", "list"])
    assert result.exit_code == 1
    assert result.stderr == (
        'guard: error: relation "guard.review_items" does not exist: this database\'s Booking'
        " Guard schema is incomplete or older than this guard: run `guard db apply`\n"
    )


def test_a_database_of_the_last_release_is_one_line_for_every_command(
    seeded_url: str,  # noqa: F811
    nothing_configured: dict[str, str | None],
) -> None:
    """A schema older than this guard: the last release's (its tables and its definitions, as
    `guard db rollback --to` it leaves them), before `guard db apply`. Every command ends in a
    result or one line, never in a bug report: a view or function of the old shape (a column
    this guard reads is not there) says to apply, as a missing object does."""
    from guard.schema.migrate import Migrator
    from guard.schema.releases import release_levels

    db_url = seeded_url  # companies with alerts and reports: what a command renders is there
    walked = [(p, a) for p, a in _walk(db_url) if p not in MAKES_OR_INSPECTS_THE_SCHEMA]
    with Migrator(db_url) as migrator:
        migrator.rollback(max(release_levels()))
    env = dict(nothing_configured, PGTARGETSESSIONATTRS=None)
    problems: list[str] = []
    for path, args in walked:
        result = CliRunner(env=env).invoke(main, ["--database-url", db_url, *path.split(), *args])
        err = result.stderr
        errors = [line for line in err.splitlines() if line.startswith("guard: error: ")]
        if "Traceback" in err or "please report it" in err or result.exit_code not in (0, 1, 2):
            problems.append(f"{path}: exit {result.exit_code}: {err.strip()[-300:]!r}")
        elif len(errors) > 1 or (result.exit_code == 2 and len(errors) != 1):
            problems.append(f"{path}: {len(errors)} error lines: {err.strip()[-300:]!r}")
    assert not problems, "\n".join(problems)
