"""Lists fit the terminal they print on: at 80 and 120 columns every item of `guard alerts list`,
`guard review list` and `guard jobs status` is one line, no line is wider than the terminal, and
the caption names the columns left out; `--wide` shows every column. The commands run in a real
pseudo-terminal of that size, on data shaped like what detection and reconciliation write."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import psycopg
import pytest
from rich.cells import cell_len

# `alerts list`'s columns, in order: the table's and the --json keys (the query's names)
LIST_COLUMNS = [
    "id",
    "severity",
    "status",
    "check_id",
    "rule_id",
    "company_id",
    "entity",
    "occurrences",
    "first_seen_at",
    "last_seen_at",
    "resolved_at",
    "message",
]
ALERTS = [
    (
        "booked_without_appointment",
        "critical",
        "call 1201 is marked booked (booking_id cal_7f3a9e2b-41c8-4d0e-9a55-0c1e2f3a4b5c) but has"
        " no active appointment: a phantom booking the calendar may not know",
    ),
    (
        "call_without_direction",
        "medium",
        "call 2402 has no direction: inbound or outbound is unknown, KPIs leave it out",
    ),
    (
        "booking_rolled_back",
        "high",
        "the booking of call 3603 was rolled back after validation: calendar answered 502 Bad"
        " Gateway twice, breaker appointment_booking:service:1 opened",
    ),
    ("orphaned_voice_appointment", "low", "appointment 88 came from a call that is gone"),
]


def _run_in_terminal(argv: list[str], columns: int) -> list[str]:
    """`guard ARGV` on a pseudo-terminal `columns` wide; its output lines, without CR."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", *argv],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
    text = b"".join(chunks).decode()
    return [line for line in text.replace("\r", "").split("\n") if line]


def _item_lines(lines: list[str]) -> list[str]:
    # a table row: its first cell is the item's id (a number); a row that wraps goes on in lines
    # whose first cell is empty
    return [line for line in lines if re.match(r"^│\s*\d+\s*│", line)]


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'Praxis Dr. Sommer')")
        for number, (check, severity, message) in enumerate(ALERTS, start=1):
            conn.execute(
                "INSERT INTO guard.alerts (fingerprint, check_id, company_id,"
                " entity_type, entity_id, severity, message, details)"
                " VALUES (%s, %s, 1, 'call', %s, %s, %s, %s::jsonb)",
                (
                    f"{check}:call:{number}",
                    check,
                    1200 + number,
                    severity,
                    message,
                    json.dumps({"booking_id": "cal_7f3a9e2b-41c8-4d0e-9a55-0c1e2f3a4b5c"}),
                ),
            )
        for reason, details in [
            ("calendar_booking_failure", {"booking_id": "cal_0c1e2f3a", "calendar": "cal.com"}),
            (
                "other",
                {
                    "booking_id": "cal_7f3a9e2b-41c8-4d0e-9a55-0c1e2f3a4b5c",
                    "booking_failure_reason": "calendar answered 502 twice; circuit opened",
                },
            ),
        ]:
            conn.execute(
                "SELECT guard.enqueue_review(1, 1201, NULL, %s, %s::jsonb)",
                (reason, json.dumps(details)),
            )
    return db_url


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize(
    ("argv", "items"),
    [(["alerts", "list"], len(ALERTS)), (["review", "list"], 2), (["jobs", "status"], None)],
)
def test_each_item_is_one_line_within_the_terminal(
    seeded: str, argv: list[str], items: int | None, columns: int
) -> None:
    lines = _run_in_terminal(["--database-url", seeded, *argv], columns)
    too_wide = [line for line in lines if cell_len(line) > columns]
    assert too_wide == [], "\n".join(lines)
    rows = [line for line in lines if line.startswith("│")]
    if items is None:  # jobs: a row per job, its first cell the job's name
        assert all(not re.match(r"^│\s+│", row) for row in rows), "\n".join(lines)
        assert len(rows) >= 5, "\n".join(lines)
    else:
        assert len(_item_lines(lines)) == items, "\n".join(lines)
        wrapped = [row for row in rows[1:] if re.match(r"^│\s+│", row)]
        assert wrapped == [], "\n".join(lines)


def test_the_caption_names_what_is_left_out_and_wide_shows_it(seeded: str) -> None:
    narrow = _run_in_terminal(["--database-url", seeded, "alerts", "list"], 80)
    starts = [i for i, line in enumerate(narrow) if line.startswith("not shown at this width:")]
    assert len(starts) == 1, "\n".join(narrow)
    caption = " ".join(narrow[starts[0] :])  # wrapped to the terminal's width
    assert "rule_id" in caption and "resolved_at" in caption and "(--wide)" in caption
    header = next(line for line in narrow if "severity" in line)
    assert "rule_id" not in header and "message" in header
    # the start of each message is there, cut with an ellipsis
    assert sum("…" in line for line in _item_lines(narrow)) >= 2, "\n".join(narrow)

    wide = _run_in_terminal(["--database-url", seeded, "alerts", "list", "--wide"], 80)
    assert not any(line.startswith("not shown") for line in wide)
    top_border = next(line for line in wide if line.startswith("┏"))
    assert top_border.count("┳") == len(LIST_COLUMNS) - 1, "\n".join(wide)  # every column
    assert all(cell_len(line) <= 80 for line in wide), "\n".join(wide)


def test_a_pipe_gets_every_column_whole(seeded: str) -> None:
    """Off a terminal nothing is cut: scripts that read the table keep what they had."""
    result = subprocess.run(
        [sys.executable, "-m", "guard.cli", "--database-url", seeded, "alerts", "list"],
        env={**os.environ, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert ALERTS[0][2] in result.stdout and "I7_booking_failures" in result.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "guard.cli", "--database-url", seeded, "alerts", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert all(list(alert) == LIST_COLUMNS for alert in json.loads(listed.stdout)), listed.stdout
