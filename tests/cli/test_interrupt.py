"""Ctrl-C of the long-running commands exits 130 (README's table), after the same orderly stop
as SIGTERM, which a service manager sends and which exits 0. Real `guard watch`, `guard
metrics` and `guard jobs run` processes, a real signal, no traceback."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from tests.cli.test_exit_codes import code_for

# What each command says on stderr once it runs (then a signal meets its steady state).
COMMANDS = {
    "watch": (["watch", "--channel", "stdout", "--poll-interval", "0.5"], "watching channels"),
    "metrics": (["metrics", "--port", "0"], "serving http://"),
    "jobs run": (["jobs", "run"], "running due jobs"),
}


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_until(
    db_url: str, name: str, signum: signal.Signals, *, started_ignoring_sigint: bool = False
) -> tuple[int, str]:
    argv, ready = COMMANDS[name]
    process = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "--database-url", db_url, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # An ignored SIGINT is inherited through exec (a shell's background job, some process
        # managers and test runners start children so); Python then keeps ignoring it.
        preexec_fn=_ignore_sigint if started_ignoring_sigint else None,  # noqa: PLW1509
        # faulthandler: a process that does not stop prints where it is when aborted below
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GUARD_")},
            "PYTHONFAULTHANDLER": "1",
        },
    )
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout
    assert stream is not None

    def read() -> None:
        for line in stream:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while not any(ready in line for line in seen):
            seen.append(lines.get(timeout=30))
        process.send_signal(signum)
        # A query the signal interrupts is cancelled first (psycopg waits up to 5 s twice for the
        # server); on a loaded machine that is slow, never endless.
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            process.wait(timeout=10)
            reader.join(timeout=5)
            while not lines.empty():
                seen.append(lines.get())
            pytest.fail(f"{name} still ran 60 s after {signum.name}:\n" + "".join(seen))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    while not lines.empty():
        seen.append(lines.get())
    return code, "".join(seen)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_ctrl_c_exits_130(db_url: str, name: str) -> None:
    code, stderr = _run_until(db_url, name, signal.SIGINT)
    assert code == code_for("interrupted (Ctrl-C)") == 130, stderr
    assert "Traceback" not in stderr and "guard: error" not in stderr, stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_sigterm_is_a_clean_stop(db_url: str, name: str) -> None:
    code, stderr = _run_until(db_url, name, signal.SIGTERM)
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_ctrl_c_stops_a_command_started_ignoring_it(db_url: str, name: str) -> None:
    code, stderr = _run_until(db_url, name, signal.SIGINT, started_ignoring_sigint=True)
    assert code == 130, stderr
