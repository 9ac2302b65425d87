"""`guard` as the tests of its commands run it: in-process against one database, or as a
process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import click
from click.testing import CliRunner, Result

from guard.cli import main


def all_commands() -> click.Group:
    """The root group with every command loaded (what walks the whole tree needs)."""
    with click.Context(main) as ctx:
        for name in main.list_commands(ctx):
            main.get_command(ctx, name)
    return main


def cli(url: str, *args: str) -> tuple[int, str, str]:
    """`guard --database-url URL ARGS...`: its exit code, stdout and stderr."""
    result = CliRunner().invoke(main, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


# `guard breaker ARGS...` against one database and one Redis.
BreakerCli = Callable[..., Result]


def breaker_cli(url: str, redis_url: str) -> BreakerCli:
    """`guard --database-url URL breaker ARGS...` in-process with `redis_url` as its Redis, its
    output wide enough that no table row wraps."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(
            main,
            ["--database-url", url, "breaker", *args],
            env={"GUARD_REDIS_URL": redis_url, "COLUMNS": "300"},
        )

    return run


GUARD = [sys.executable, "-m", "guard.cli"]
ALERT_CHANNELS = ("GUARD_SLACK_WEBHOOK_URL", "GUARD_ALERTMANAGER_URL", "GUARD_SMTP_HOST")


def guard_process(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`guard ARGS...` in a process of its own, with `env` added to this one's environment and no
    alert channel configured but those `env` names; stdin closed, output captured."""
    environment = {**os.environ, **env}
    for name in ALERT_CHANNELS:
        if name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [*GUARD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
        stdin=subprocess.DEVNULL,
    )
