"""Waiting for something another process does, with a deadline that fails the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO

import pytest


def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
) -> float:
    """Poll `condition` until it holds; the seconds it took. A timeout fails the test naming
    `what`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
    return time.monotonic() - started


def collect_lines(stream: IO[str] | None) -> tuple[list[str], threading.Thread]:
    """The lines a child process writes to `stream`, appended as they come by a daemon thread
    (a pipe left unread would block the child once full); join the thread after the child ends."""
    assert stream is not None, "the process was started without a pipe for this stream"
    lines: list[str] = []

    def read() -> None:
        for line in stream:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader
