"""`guard db` from the command line: output, exit codes and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from guard import connection
from guard.cli import main
from guard.resources import migrations_dir
from tests.support.migrations import shipped_migrations


def _run(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr without the target line every `guard db` command prints
    first (tests of that line read stderr themselves)."""
    result = CliRunner().invoke(main, list(args))
    err = "".join(
        line for line in result.stderr.splitlines(keepends=True) if not line.startswith("target: ")
    )
    return result.exit_code, result.stdout, err


def test_apply_status_verify_on_an_empty_database(empty_db_url: str) -> None:
    code, out, _ = _run("--database-url", empty_db_url, "db", "status", "--json")
    assert code == 0
    assert {m["applied"] for m in json.loads(out)} == {False}

    code, out, _ = _run("--database-url", empty_db_url, "db", "apply")
    assert code == 0
    assert re.findall(r"applied  (\S+)", out)[0] == "0001_guard_schema"

    code, out, _ = _run("--database-url", empty_db_url, "db", "apply")
    assert (code, out.strip()) == (0, "Nothing to apply: the database is up to date.")

    code, out, _ = _run("--database-url", empty_db_url, "db", "verify")
    assert code == 0 and out.startswith("OK")


def test_verify_exits_non_zero_and_prints_the_difference(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE guard.rules DISABLE TRIGGER rules_touch_updated_at")
    code, out, _ = _run("--database-url", db_url, "db", "verify")
    assert code == 1
    assert "disabled  trigger rules_touch_updated_at on guard.rules" in out
    code, out, _ = _run("--database-url", db_url, "db", "verify", "--json")
    assert code == 1
    assert json.loads(out)["differences"][0]["kind"] == "disabled"


def test_database_url_from_environment(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_DATABASE_URL", db_url)
    code, out, _ = _run("db", "verify")
    assert code == 0, out


def test_pg_variables_when_no_url_is_given(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUARD_DATABASE_URL", raising=False)
    params = psycopg.conninfo.conninfo_to_dict(db_url)
    for key, var in (
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("dbname", "PGDATABASE"),
    ):
        monkeypatch.setenv(var, str(params[key]))
    code, out, _ = _run("db", "status", "--json")
    assert code == 0 and all(m["applied"] for m in json.loads(out))


@pytest.mark.parametrize(
    ("url", "message", "exit_code"),
    [
        ("postgresql://a b", "invalid database URL", 2),
        ("nonsense=1", 'invalid database URL: invalid connection option "nonsense"', 2),
        (
            "postgresql://nobody:s3cret@127.0.0.1:1/x",
            "cannot connect to 127.0.0.1:1/x as nobody",
            1,
        ),
    ],
)
def test_bad_urls_are_one_clear_line(url: str, message: str, exit_code: int) -> None:
    code, out, err = _run("--database-url", url, "db", "status")
    assert code == exit_code and out == ""
    assert err.startswith(f"guard: error: {message}")
    assert err.count("\n") == 1, "exactly one line"
    assert "s3cret" not in err, "the password must never be printed"


def test_missing_database_is_one_line(pg_cluster_url_of_missing_db: str) -> None:
    code, _, err = _run("--database-url", pg_cluster_url_of_missing_db, "db", "apply")
    assert code == 1 and err.count("\n") == 1
    assert 'database "no_such_db" does not exist' in err


def test_missing_extension_is_one_line(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION plpgsql")
    code, _, err = _run("--database-url", empty_db_url, "db", "apply")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("guard: error: missing extension plpgsql")
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT to_regnamespace('guard')").fetchone() == (None,)


def test_unsupported_server_version_is_refused(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real server; pretend Booking Guard supported only the versions after it. (A real
    # PostgreSQL 14 is refused in tests/versions/test_versions.py.)
    with psycopg.connect(db_url) as probe:
        major = probe.info.server_version // 10000
    monkeypatch.setattr(connection, "SUPPORTED_MAJOR_VERSIONS", (major + 1, major + 2))
    code, _, err = _run("--database-url", db_url, "db", "status")
    assert code == 1 and err.count("\n") == 1
    assert f"PostgreSQL {major} at" in err and f"needs {major + 1} or newer" in err
    monkeypatch.setattr(connection, "SUPPORTED_MAJOR_VERSIONS", (major - 2, major - 1))
    code, _, err = _run("--database-url", db_url, "db", "status")
    assert code == 1 and f"PostgreSQL {major} at" in err and "is not supported yet" in err


def test_unknown_migration_id(db_url: str) -> None:
    code, _, err = _run("--database-url", db_url, "db", "rollback", "--to", "0042_nope")
    assert (code, err.strip()) == (1, "guard: error: unknown migration '0042_nope'")


def test_rollback_then_status_shows_pending(db_url: str) -> None:
    newest = sorted(p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name)[-1]
    code, out, _ = _run("--database-url", db_url, "db", "rollback", "--yes")
    assert (code, out.strip()) == (0, f"rolled back  {newest}")
    code, out, _ = _run("--database-url", db_url, "db", "status")
    assert re.search(rf"{newest}\s+│ pending\s+│", out)


@pytest.fixture
def pg_cluster_url_of_missing_db(pg_cluster: object) -> str:
    return pg_cluster.url("no_such_db")  # type: ignore[attr-defined,no-any-return]


def test_a_failed_apply_names_what_was_committed_before_it(
    empty_db_url: str, tmp_path: Path
) -> None:
    copied = shipped_migrations(
        tmp_path,
        {
            "9999_breaks.sql": "SELECT 1 / 0;\n",
            "9999_breaks.rollback.sql": "SELECT 1;\n",
        },
    )
    released = sorted(p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name)

    code, out, err = _run(
        "--database-url", empty_db_url, "db", "apply", "--migrations-dir", str(copied)
    )
    assert code == 1, err
    assert re.findall(r"applied  (\S+)", out) == released  # printed as each one committed
    assert err.splitlines(keepends=True)[-1] == (
        "guard: error: migration 9999_breaks failed and was not applied: division by zero."
        f" The {len(released)} migration(s) before it in this run ({released[0]} to"
        f" {released[-1]}) are applied and committed\n"
    )
    code, out, _ = _run(
        "--database-url", empty_db_url, "db", "status", "--migrations-dir", str(copied), "--json"
    )
    assert [m["id"] for m in json.loads(out) if not m["applied"]] == ["9999_breaks"]


def test_the_server_is_supported_or_refused_naming_what_it_lacks(empty_db_url: str) -> None:
    """`make test-versions` runs this on a real PostgreSQL 14 as well as on 15 to 18."""
    with psycopg.connect(empty_db_url) as probe:
        major, host, port = probe.info.server_version // 10000, probe.info.host, probe.info.port
    code, out, err = _run("--database-url", empty_db_url, "db", "apply")
    if major in connection.SUPPORTED_MAJOR_VERSIONS:
        assert code == 0, err
        return
    assert (code, out) == (1, "")
    assert err == (
        f"guard: error: PostgreSQL {major} at {host}:{port}/{empty_db_url.rsplit('/', 1)[1]}"
        " as postgres is not supported: Booking Guard needs 15 or newer (views with"
        " security_invoker, which PostgreSQL 15 introduced); supported: 15, 16, 17, 18\n"
    )
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT to_regnamespace('guard')").fetchone() == (None,)
