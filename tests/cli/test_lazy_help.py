"""`guard --help` and `guard --version` list every command without importing any of them, nor
psycopg, rich, redis, prometheus_client or yoyo (the listing comes from guard.cli.COMMANDS):
what keeps them quick. Checked on the modules a fresh interpreter holds, not on a time."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("psycopg", "rich", "redis", "prometheus_client", "yoyo")

# Runs in a fresh interpreter: the listing first, what it imported, then every command loaded.
PROBE = """
import contextlib, io, json, sys
from guard.cli import COMMANDS, main
from tests.support.cli import all_commands
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main([sys.argv[1]])
    except SystemExit as exit:
        code = exit.code
imported = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {heavy} or name in {{entry[0] for entry in COMMANDS.values()}}
)
tree = all_commands()
print(json.dumps({{
    "code": code,
    "out": out.getvalue(),
    "imported": imported,
    "commands": {{name: c.get_short_help_str(limit=200) for name, c in tree.commands.items()}},
}}))
"""


def _probe(option: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), option],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_help_lists_every_command_and_imports_none() -> None:
    result = _probe("--help")
    assert result["code"] == 0
    assert result["imported"] == [], "guard --help imported these"
    listing = str(result["out"]).split("Commands:\n", 1)[1]
    listed = {line.split()[0]: " ".join(line.split()[1:]) for line in listing.splitlines()}
    commands = result["commands"]
    assert isinstance(commands, dict) and len(commands) > 10
    # Each command of the loaded tree is listed, with the short help it has once loaded.
    assert listed == commands


def test_version_imports_no_command() -> None:
    result = _probe("--version")
    assert result["code"] == 0 and str(result["out"]).startswith("guard, version ")
    assert result["imported"] == []


def test_a_command_s_own_help_still_loads_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "guard.cli", "watch", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--once" in done.stdout, done.stderr
