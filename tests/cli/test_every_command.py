"""Every `guard` command, walked as real `guard` processes against a real PostgreSQL and Redis:

- as the reporting login and as the reviewer login (real logins, members of the group roles,
  bound to company 1), each ends in one clear line: no traceback, never "a bug: please report
  it", and a refused privilege names the role the command needs and the login used;
- as the owner, every time in its text output is in the one text format
  (`2026-11-22 09:00:00Z`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from guard.cli.output import TEXT_TIME_PATTERN
from tests.cli.commands import NOT_WALKED, command_lines, leaves
from tests.security.conftest import bind, login_roles, seeded_url  # noqa: F401 (fixtures)
from tests.support.redis_server import RedisServer

GUARD = [sys.executable, "-m", "guard.cli"]


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _guard(
    url: str, redis_url: str, path: str, args: list[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GUARD, "--database-url", url, *path.split(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "GUARD_REDIS_URL": redis_url, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def test_every_command_is_walked(seeded_url: str, login_roles: dict[str, str]) -> None:  # noqa: F811
    walked = {path for path, _ in command_lines(seeded_url, login_roles["reporting"])}
    assert walked | set(NOT_WALKED) == set(leaves()), "add the new command to tests/cli/commands.py"
    assert not walked & set(NOT_WALKED)


def _login_url(url: str, login: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, user=login)


@pytest.mark.slow  # about a minute or more: the slow group (docs/testing.md)
@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_every_command_as_a_reading_login_ends_in_one_clear_line(
    seeded_url: str,  # noqa: F811
    login_roles: dict[str, str],  # noqa: F811
    redis_url: str,
    kind: str,
) -> None:
    login = login_roles[kind]
    bind(seeded_url, login, 1)
    url = _login_url(seeded_url, login)
    outcomes: dict[str, str] = {}
    problems: list[str] = []
    refused = 0
    for path, args in command_lines(seeded_url, login):
        done = _guard(url, redis_url, path, args)
        err = done.stderr
        outcomes[path] = f"exit {done.returncode}"
        if "Traceback" in err or "Traceback" in done.stdout:
            problems.append(f"{path}: a traceback:\n{err[-2000:]}")
        if "please report it" in err or "unexpected " in err:
            problems.append(f"{path}: reported as a bug: {err.strip()}")
        errors = [line for line in err.splitlines() if line.startswith("guard: error:")]
        if done.returncode == 0:
            if errors:
                problems.append(f"{path}: exit 0 with an error line: {errors}")
            continue
        if done.returncode not in (1, 2):
            problems.append(f"{path}: exit {done.returncode}")
        if len(errors) != 1 or not err.rstrip("\n").splitlines()[-1].startswith("guard: error:"):
            problems.append(f"{path}: not one final error line: {err!r}")
            continue
        line = errors[0]
        outcomes[path] += f": {line[:100]}"
        if "permission denied" in line:
            refused += 1
            if f"you are logged in as {login}" not in line or " needs " not in line:
                problems.append(f"{path}: a refusal without the role and login: {line}")
    assert not problems, (
        "\n".join(problems) + "\n" + "\n".join(f"{k}: {v}" for k, v in outcomes.items())
    )
    # the walk reached the database's refusals (else it proves nothing about them) ...
    assert refused >= 5, outcomes
    # ... and what a reading login may do, it does
    for allowed in ("alerts list", "alerts show", "review list", "jobs status", "metrics"):
        assert outcomes[allowed] == "exit 0", (allowed, outcomes[allowed])


# Anything that looks like a time, with whatever follows it that a format may add.
_TIME_LIKE = re.compile(
    r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?| ?UTC)?"
)


def times_in(text: str) -> list[str]:
    return _TIME_LIKE.findall(text)


def test_the_time_finder_can_fail() -> None:
    found = times_in("a 2026-11-22 09:00 UTC b 2026-11-22T09:00:00+00:00 c 2026-11-22 09:00:00Z")
    assert [t for t in found if not TEXT_TIME_PATTERN.fullmatch(t)] == [
        "2026-11-22 09:00 UTC",
        "2026-11-22T09:00:00+00:00",
    ]


@pytest.mark.slow  # about a minute or more: the slow group (docs/testing.md)
def test_every_command_prints_times_in_one_format(
    seeded_url: str,  # noqa: F811
    login_roles: dict[str, str],  # noqa: F811
    redis_url: str,
) -> None:
    seen = 0
    wrong: list[str] = []
    for path, args in command_lines(seeded_url, login_roles["reporting"]):
        done = _guard(seeded_url, redis_url, path, args)
        assert "Traceback" not in done.stderr, (path, done.stderr)
        # the stdout channel (`guard watch`, `guard alerts test --channel stdout`) is JSON lines,
        # whose times are JSON's format
        text = done.stderr + ("" if path in ("watch", "alerts test") else done.stdout)
        for found in times_in(text):
            seen += 1
            if not TEXT_TIME_PATTERN.fullmatch(found):
                wrong.append(f"{path}: {found!r}")
    assert not wrong, "\n".join(wrong)
    assert seen >= 10, "the walk printed times (else it proves nothing)"
