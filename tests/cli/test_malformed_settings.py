"""A malformed GUARD_DATABASE_URL or GUARD_REDIS_URL is a usage error (exit 2, README's table):
one line saying the form expected, before anything connects, never libpq's `missing "="` alone,
never a password, never a traceback; `guard watch` does not retry it forever. Generated cases (a
wrong scheme in several URL shapes, a JDBC prefix, garbage, blank and empty values, bytes that
are not UTF-8) through real `guard` processes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

from tests.cli.test_exit_codes import code_for

USAGE = code_for("a usage error")
EXPECTED_FORM = "expected postgresql://USER@HOST:PORT/DB or a libpq key=value string"
SECRET = "s3cret-pw"
WRONG_SCHEMES = [
    "mysql",
    "mariadb",
    "jdbc:postgresql",
    "jdbc:mysql",
    "http",
    "redis",
    "sqlite",
    "postgresql+asyncpg",
    "pgsql",
    "postgresq",
]
URL_SHAPES = [
    "{scheme}://app:" + SECRET + "@db.example:5432/bookings",
    "{scheme}://db.example/bookings?sslmode=require",
]
GARBAGE = ["garbage", "db.example:5432/bookings", "app@db.example/bookings", "postgresql:/x"]
BLANK = [" ", "\t", " \n "]
# A command of each kind: one that reads, the long-running dispatcher and exporter (they must
# stop at once, not retry), and one of `guard db`.
COMMANDS = [["alerts", "list"], ["watch"], ["metrics", "--port", "0"], ["db", "status"]]
BAD_DATABASE_URLS = [
    shape.format(scheme=scheme) for scheme, shape in itertools.product(WRONG_SCHEMES, URL_SHAPES)
] + GARBAGE


def _guard(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "GUARD_"))}
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", *argv],
        capture_output=True,
        text=True,
        timeout=20,  # `guard watch` must stop at once, not retry the connection
        check=False,
        env={**environment, **env},
        stdin=subprocess.DEVNULL,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == "", done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("guard: error: "), line
    return line


@pytest.mark.parametrize(
    ("url", "command"),
    [(url, COMMANDS[n % len(COMMANDS)]) for n, url in enumerate([*BAD_DATABASE_URLS, *BLANK])],
)
def test_a_malformed_database_url_is_a_usage_error(url: str, command: list[str]) -> None:
    done = _guard(command, {"GUARD_DATABASE_URL": url})
    assert done.returncode == USAGE, (url, done.returncode, done.stderr)
    line = _one_line(done)
    assert line.startswith("guard: error: invalid database URL: ") and EXPECTED_FORM in line
    assert SECRET not in line
    scheme = url.split("://", maxsplit=1)[0]
    if "://" in url:
        assert f"scheme {scheme}:// is not PostgreSQL's" in line, line


def test_the_same_url_as_an_option_is_refused_alike() -> None:
    done = _guard(["--database-url", "jdbc:postgresql://db:5432/app", "alerts", "list"], {})
    assert done.returncode == USAGE
    assert "scheme jdbc:postgresql:// is not PostgreSQL's" in _one_line(done)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:" + SECRET + "@127.0.0.1:1/bookings",
        "postgres://app@127.0.0.1:1/bookings",
        "postgresql+psycopg://app@127.0.0.1:1/bookings",
        "host=127.0.0.1 port=1 dbname=bookings user=app",
    ],
)
def test_a_well_formed_url_is_used(url: str) -> None:
    """The other side: each accepted form reaches the connection (nothing listens: exit 1)."""
    done = _guard(["alerts", "list"], {"GUARD_DATABASE_URL": url})
    assert done.returncode == code_for("database unreachable"), done.stderr
    line = _one_line(done)
    assert line.startswith("guard: error: cannot connect to 127.0.0.1:1/bookings"), line
    assert SECRET not in line


def test_an_empty_database_url_is_no_database() -> None:
    done = _guard(["alerts", "list"], {"GUARD_DATABASE_URL": ""})
    assert done.returncode == USAGE
    assert _one_line(done).startswith("guard: error: no database given")


@pytest.mark.parametrize(
    "url",
    [
        "http://cache:" + SECRET + "@cache:6379/0",
        "jdbc:redis://cache:6379",
        "cache:6379",
        "redis://cache:port/0",
        " ",
    ],
)
def test_a_malformed_redis_url_is_a_usage_error(db_url: str, url: str) -> None:
    done = _guard(["--database-url", db_url, "breaker", "list"], {"GUARD_REDIS_URL": url})
    assert done.returncode == USAGE, done.stderr
    line = _one_line(done)
    assert "GUARD_REDIS_URL is not a Redis URL (redis://, rediss:// or unix://)" in line
    assert SECRET not in line


@pytest.mark.parametrize("name", ["GUARD_DATABASE_URL", "GUARD_REDIS_URL"])
def test_a_url_that_is_not_utf8_is_a_usage_error(name: str) -> None:
    environment = {
        k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith(("PG", "GUARD_"))
    }
    environment[b"GUARD_DATABASE_URL"] = b"postgresql://app@127.0.0.1:1/bookings"
    environment[name.encode()] = b"postgresql://app@db/b\xffookings"
    done = subprocess.run(
        [sys.executable, "-m", "guard.cli", "alerts", "list"],
        capture_output=True,
        timeout=60,
        check=False,
        env=environment,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == USAGE
    assert done.stderr == f"guard: error: environment variable {name} is not valid UTF-8\n".encode()
