"""What `guard` prints: tables never cut off a terminal, NO_COLOR honoured on one, JSON times in one
ISO 8601 format. Real `guard` processes: a pipe and a pseudo-terminal are what users have."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner

from guard.cli import main

GUARD = [sys.executable, "-m", "guard.cli"]
LONG_NOTE = "rebooked by phone after the calendar outage, customer confirmed by e-mail " * 3


def _seed_review_item(url: str) -> None:
    """An item in the queue whose note is far wider than 80 columns."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "SELECT guard.enqueue_review(1, NULL, NULL, 'calendar_booking_failure', %s::jsonb)",
            (json.dumps({"note": LONG_NOTE}),),
        )


def _on_terminal(argv: list[str], env: dict[str, str]) -> bytes:
    """Run guard with stdout on a pseudo-terminal of 80 columns; return what it wrote."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes guard
        os.environ.update({**env, "COLUMNS": "80", "LINES": "24"})
        os.execv(sys.executable, [*GUARD, *argv])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out


def test_a_piped_table_keeps_every_character(db_url: str) -> None:
    _seed_review_item(db_url)
    done = subprocess.run(
        [*GUARD, "--database-url", db_url, "review", "list"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert LONG_NOTE.strip() in done.stdout, "the details column was cut"
    assert "…" not in done.stdout
    assert "\x1b[" not in done.stdout, "no styling off a terminal"
    header = next(line for line in done.stdout.splitlines() if "daily" in line or "reason" in line)
    for column in ("claimed_by_role", "closed_by_role", "details"):
        assert column in header


def test_no_color_on_a_terminal_means_no_escape_codes(db_url: str) -> None:
    styled = _on_terminal(["--database-url", db_url, "review", "list"], {"NO_COLOR": ""})
    assert b"\x1b[1m" in styled, "the header is bold on a terminal (else this test proves nothing)"
    plain = _on_terminal(["--database-url", db_url, "review", "list"], {"NO_COLOR": "1"})
    assert b"Review items" in plain
    assert b"\x1b[" not in plain


_TIMESTAMP_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_json_times_are_iso_8601_everywhere(db_url: str, tmp_path: Path) -> None:
    _seed_review_item(db_url)
    runner = CliRunner()
    commands = [
        ["review", "list", "--json"],
        ["review", "list", "--status", "open", "--json"],
        ["jobs", "status", "--json"],
        ["db", "status", "--json"],
        ["report", "--json"],
        ["tenant", "list", "--json"],
    ]
    seen = 0
    for argv in commands:
        result = runner.invoke(main, ["--database-url", db_url, *argv])
        assert result.exit_code in (0, 1), (argv, result.stderr)
        for text in _strings(json.loads(result.stdout)):
            if _TIMESTAMP_LIKE.match(text):
                seen += 1
                assert _ISO_8601.match(text), f"guard {' '.join(argv)}: {text!r} is not ISO 8601"
    assert seen >= 3, "the commands printed times (else this test proves nothing)"


def test_shell_completion_as_the_readme_shows_it() -> None:
    """README: `eval "$(_GUARD_COMPLETE=bash_source guard)"`; the script then asks guard."""
    source = subprocess.run(
        [*GUARD], env={**os.environ, "_GUARD_COMPLETE": "bash_source"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "_guard_completion()" in source.stdout
    answer = subprocess.run(
        [*GUARD],
        env={**os.environ, "_GUARD_COMPLETE": "bash_complete", "COMP_WORDS": "guard review cl",
             "COMP_CWORD": "2"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert answer.stdout.split() == ["plain,claim"]


def test_wide_on_a_narrow_terminal_folds_long_values_never_cuts_them(db_url: str) -> None:
    """With --wide a long value without spaces (compact JSON details, a key) goes on over more
    lines of its cell: every character is still there, no ellipsis (without --wide a list is
    one line per item: tests/cli/test_terminal_width.py)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "SELECT guard.enqueue_review(1, NULL, NULL, 'other', %s::jsonb)",
            (json.dumps({"booking_id": "q" * 300}),),
        )
    argv = ["--database-url", db_url, "review", "list", "--wide"]
    shown = _on_terminal(argv, {"NO_COLOR": "1"})
    assert "…".encode() not in shown, "a cell was cut"
    assert shown.count(b"q") >= 300, "every character of the long value is shown"
