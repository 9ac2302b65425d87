"""Run a pgTAP file through psycopg and read its TAP output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

_PLAN = re.compile(r"^1\.\.(\d+)")
_RESULT = re.compile(r"^(not ok|ok) (\d+)")


@dataclass
class TapResult:
    planned: int | None = None
    passed: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the failing line and its diagnostics
    lines: list[str] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return len(self.passed) + len(self.failed)


def run_tap_file(conn: psycopg.Connection[Any], text: str) -> TapResult:
    """Execute the whole file (simple-query protocol: no parameters) and collect every TAP line
    from every result set."""
    result = TapResult()
    with conn.cursor() as cur:
        cur.execute(text.encode())
        while True:
            if cur.description is not None:
                for row in cur.fetchall():
                    for value in row:
                        if isinstance(value, str):
                            result.lines.extend(value.splitlines())
            if not cur.nextset():
                break
    _parse(result)
    return result


def _parse(result: TapResult) -> None:
    current_failure: list[str] | None = None
    for line in result.lines:
        plan = _PLAN.match(line)
        outcome = _RESULT.match(line)
        if plan:
            result.planned = int(plan.group(1))
        elif outcome:
            current_failure = None
            if outcome.group(1) == "ok":
                result.passed.append(int(outcome.group(2)))
            else:
                current_failure = [line]
                result.failed.append("")
        elif line.startswith("#") and current_failure is not None:
            current_failure.append(line)
        if current_failure is not None:
            result.failed[-1] = "\n".join(current_failure)
