"""`guard` as the tests of its commands run it: in-process against one database, or as a
process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from guard.cli import main


def cli(url: str, *args: str) -> tuple[int, str, str]:
    """`guard --database-url URL ARGS...`: its exit code, stdout and stderr."""
    result = CliRunner().invoke(main, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


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
