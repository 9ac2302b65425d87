"""`guard` run in-process against one database, as the tests of its commands run it."""

from __future__ import annotations

from click.testing import CliRunner

from guard.cli import main


def cli(url: str, *args: str) -> tuple[int, str, str]:
    """`guard --database-url URL ARGS...`: its exit code, stdout and stderr."""
    result = CliRunner().invoke(main, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr
